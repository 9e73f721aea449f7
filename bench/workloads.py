"""Benchmark workloads: one timed instantiate + realize in this process.

Written only against the API shared by this project and its anchor,
pylightnix 0.1.0 from PyPI (mkconfig, mkdrv, match_only, build_wrapper,
build_outpath, instantiate, realize, rref2path, store_initialize, Manager,
DRef, Build), so the very same file runs under both implementations.  Which
one gets imported is decided by the interpreter and PYTHONPATH the driver
(bench/compare.py) starts us with.

The store location comes from $PYLIGHTNIX_ROOT, which must be set before
pylightnix is imported (0.1.0 reads it at import time).

Shapes (N = total number of stages):
  chain  stage i's config holds the DRef of stage i-1; stage 0 has no deps.
  wide   N-1 independent leaves plus one root whose config lists all N-1
         leaf DRefs (a fan-in of N-1).
Every realizer writes one tiny file ('out') and nothing else.

Usage:
  python workloads.py --shape chain --n 1000 --expect-built 1000 --out res.json
Writes a JSON object with the timings (seconds) to --out.
"""

import argparse
import json
import os
import sys
import time

if __name__ == '__main__' and 'PYLIGHTNIX_ROOT' not in os.environ:
    sys.exit('workloads.py: set PYLIGHTNIX_ROOT to a scratch directory first')

from os.path import join
from typing import Any, Callable, Dict, List, Optional

_T_IMPORT0 = time.perf_counter()
import pylightnix  # noqa: E402  (imported after PYLIGHTNIX_ROOT is in the env)
from pylightnix import (build_outpath, build_wrapper, instantiate,  # noqa: E402
                        match_only, mkconfig, mkdrv, realize, rref2path,
                        store_initialize)
_T_IMPORT = time.perf_counter() - _T_IMPORT0

# Realizer invocations, counted to prove a cold run built everything and a
# warm run built nothing.
BUILT = 0


def _write_out(b: Any) -> None:
    """The trivial stage body: one small file in the output folder."""
    global BUILT
    BUILT += 1
    with open(join(build_outpath(b), 'out'), 'w') as f:
        f.write('x')


def chain_stage(n: int) -> Callable[[Any], Any]:
    """Stage function for a chain of n stages, each depending on the previous."""
    def _stage(m: Any) -> Any:
        realizer = build_wrapper(_write_out)
        prev: Optional[Any] = None
        for i in range(n):
            cfg: Dict[str, Any] = {'name': f'chain{i}', 'i': i}
            if prev is not None:
                cfg['prev'] = prev
            prev = mkdrv(m, mkconfig(cfg), match_only(), realizer)
        return prev
    return _stage


def wide_stage(n: int) -> Callable[[Any], Any]:
    """Stage function for n-1 independent leaves and one root depending on all."""
    def _stage(m: Any) -> Any:
        realizer = build_wrapper(_write_out)
        leaves: List[Any] = []
        for i in range(n - 1):
            leaves.append(mkdrv(m, mkconfig({'name': f'leaf{i}', 'i': i}),
                                match_only(), realizer))
        return mkdrv(m, mkconfig({'name': 'root', 'deps': leaves}),
                     match_only(), realizer)
    return _stage


def _version() -> str:
    """Version of the imported pylightnix (attribute, else package metadata)."""
    v = getattr(pylightnix, '__version__', None)
    if v is None:
        try:
            from importlib.metadata import version
            v = version('pylightnix')
        except Exception:
            v = '?'
    return str(v)


SHAPES = {'chain': chain_stage, 'wide': wide_stage}


def main() -> int:
    """Parse args, run one instantiate + realize, write timings as JSON."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--shape', choices=sorted(SHAPES), required=True)
    ap.add_argument('--n', type=int, required=True, help='total number of stages')
    ap.add_argument('--out', required=True, help='where to write the JSON result')
    ap.add_argument('--expect-built', type=int, default=None,
                    help='fail unless exactly this many realizers ran')
    ap.add_argument('--profile', default=None,
                    help='also write cProfile stats of instantiate+realize here')
    args = ap.parse_args()

    # 0.1.0 prints "Initializing ..." on stdout; keep our stdout for that only.
    store_initialize()
    stage = SHAPES[args.shape](args.n)

    prof = None
    if args.profile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    t1 = time.perf_counter()
    closure = instantiate(stage)
    t2 = time.perf_counter()
    rref = realize(closure)
    t3 = time.perf_counter()
    if prof is not None:
        prof.disable()
        prof.dump_stats(args.profile)

    # Sanity: the result is a real realization holding our file.
    with open(join(rref2path(rref), 'out')) as f:
        if f.read() != 'x':
            print(f'workloads.py: wrong content in {rref}', file=sys.stderr)
            return 3
    result = {
        'shape': args.shape, 'n': args.n,
        'import': _T_IMPORT, 'instantiate': t2 - t1, 'realize': t3 - t2,
        'total': t3 - t1, 'built': BUILT, 'rref': str(rref),
        'module': getattr(pylightnix, '__file__', '?'),
        'version': _version(),
    }
    with open(args.out, 'w') as f:
        json.dump(result, f)
    if args.expect_built is not None and BUILT != args.expect_built:
        print(f'workloads.py: expected {args.expect_built} realizer runs, got {BUILT}',
              file=sys.stderr)
        return 4
    return 0


if __name__ == '__main__':
    sys.exit(main())
