"""Run bench/workloads.py under two pylightnix implementations and compare.

The anchor is pylightnix 0.1.0 from PyPI (the design document's API), run
from its own venv; "ours" is this repository.  Every measurement is a fresh
process with its own scratch store ($PYLIGHTNIX_ROOT under a temp dir), so
the two never share state.  For each workload we measure:

  cold  empty store: instantiate + realize (every stage is built)
  warm  a fresh process on the store the cold run left: instantiate +
        realize again (nothing is built)

Each cell is repeated (median reported) while it stays within a small time
budget; sizes whose estimated time (extrapolated from the growth measured on
smaller sizes) exceeds the skip budget are skipped and the estimate printed.
Standard library only, so any Python 3.8+ can run it.  See bench/README.md.
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS_PY = os.path.join(HERE, 'workloads.py')

# (shape, n, implementations). Sizes of BIG or more are ours only (0.1.0 would
# need far too long) and keep their stores under --big-scratch (tmpfs by
# default), because building 100k stages cold on a disk with one fsync'd
# write per stage does not fit the time budget; their measured figure is the
# warm one, which only reads.
FULL_PLAN: List[Tuple[str, int, Tuple[str, ...]]] = [
    ('chain', 300, ('anchor', 'ours')),
    ('chain', 1000, ('anchor', 'ours')),
    ('chain', 3000, ('anchor', 'ours')),
    ('wide', 1000, ('anchor', 'ours')),
    ('wide', 10000, ('ours',)),
    ('wide', 100000, ('ours',)),
]
QUICK_PLAN: List[Tuple[str, int, Tuple[str, ...]]] = [
    ('chain', 30, ('anchor', 'ours')),
    ('chain', 100, ('anchor', 'ours')),
    ('chain', 300, ('anchor', 'ours')),
    ('wide', 100, ('anchor', 'ours')),
    ('wide', 10000, ('ours',)),
]
BIG = 10000


class Impl:
    """One pylightnix implementation: an interpreter plus an optional PYTHONPATH."""

    def __init__(self, name: str, python: str, pythonpath: Optional[str]) -> None:
        self.name = name
        self.python = python
        self.pythonpath = pythonpath

    def env(self, root: str) -> Dict[str, str]:
        """Environment for one workload process using store root `root`."""
        env = dict(os.environ)
        for k in ('PYLIGHTNIX_TMP', 'PYLIGHTNIX_STORE', 'PYLIGHTNIX_BREAK', 'PYTHONPATH'):
            env.pop(k, None)
        env['PYLIGHTNIX_ROOT'] = root
        if self.pythonpath:
            env['PYTHONPATH'] = self.pythonpath
        return env

    def describe(self) -> str:
        """Interpreter, module location and version, as the workload sees them."""
        code = ('import sys, pylightnix\n'
                'v = getattr(pylightnix, "__version__", None)\n'
                'if v is None:\n'
                '    try:\n'
                '        from importlib.metadata import version; v = version("pylightnix")\n'
                '    except Exception: v = "?"\n'
                'print(sys.version.split()[0], v, pylightnix.__file__)\n')
        tmp = tempfile.mkdtemp(prefix='plx-bench-probe-')
        try:
            p = subprocess.run([self.python, '-c', code], env=self.env(tmp), cwd=tmp,
                               capture_output=True, text=True, timeout=120)
        finally:
            rmtree_store(tmp)
        if p.returncode != 0:
            tail = (p.stderr.strip().splitlines() or ['?'])[-1]
            return f'{self.python}: import failed: {tail}'
        py, ver, mod = p.stdout.split(None, 2)
        pp = f' PYTHONPATH={self.pythonpath}' if self.pythonpath else ''
        return f'{self.python}{pp} (Python {py}; pylightnix {ver} from {mod.strip()})'


def rmtree_store(path: str) -> None:
    """Remove a scratch store; 0.1.0 leaves realizations read-only."""
    def _onerror(func: Any, p: str, exc: Any) -> None:
        os.chmod(os.path.dirname(p), 0o700)
        if os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, 0o700)
        func(p)
    for d, dirs, _ in os.walk(path):
        for x in dirs:
            try:
                os.chmod(os.path.join(d, x), 0o700)
            except OSError:
                pass
    shutil.rmtree(path, onerror=_onerror)


class RunError(Exception):
    """A workload process failed; carries the reproducer and stderr tail."""


def run_one(impl: Impl, shape: str, n: int, root: str, expect_built: int,
            timeout: float, profile: Optional[str] = None) -> Dict[str, Any]:
    """Run workloads.py once in a fresh process; return its timing JSON."""
    out = os.path.join(root, f'result-{time.monotonic_ns()}.json')
    cmd = [impl.python, WORKLOADS_PY, '--shape', shape, '--n', str(n),
           '--expect-built', str(expect_built), '--out', out]
    if profile:
        cmd += ['--profile', profile]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, env=impl.env(root), cwd=root, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunError(f'timeout after {timeout:.0f}s: {repro(impl, cmd)}')
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        tail = '\n'.join((p.stderr or p.stdout).strip().splitlines()[-25:])
        raise RunError(f'exit {p.returncode}: {repro(impl, cmd)}\n{tail}')
    with open(out) as f:
        res = json.load(f)
    os.unlink(out)
    res['wall'] = wall
    return res


def repro(impl: Impl, cmd: List[str]) -> str:
    """A shell line that reruns a workload by hand in a fresh scratch store.

    For a warm run (--expect-built 0) it first replays the cold run that
    fills the store."""
    pp = f'PYTHONPATH={impl.pythonpath} ' if impl.pythonpath else ''
    args = cmd[1:cmd.index('--out')]
    run = f'env -u PYTHONPATH {pp}PYLIGHTNIX_ROOT=$d {impl.python} '
    line = 'd=$(mktemp -d); '
    i = args.index('--expect-built')
    if args[i + 1] == '0':
        cold = list(args)
        cold[i + 1] = args[args.index('--n') + 1]
        line += run + ' '.join(cold) + ' --out $d/cold.json && '
    return line + run + ' '.join(args) + ' --out $d/r.json'


def median(rs: List[Dict[str, Any]], key: str) -> float:
    """Median of one timing over repeated runs."""
    return statistics.median(r[key] for r in rs)


class Bench:
    """Measures the plan and keeps results for the tables."""

    def __init__(self, args: argparse.Namespace, impls: Dict[str, Impl]) -> None:
        self.a = args
        self.impls = impls
        # (impl, shape, n, phase) -> {'runs': [...]} | {'skipped': str} | {'error': str}
        self.res: Dict[Tuple[str, str, int, str], Dict[str, Any]] = {}

    def log(self, msg: str) -> None:
        """Progress on stderr, so stdout stays the report."""
        print(msg, file=sys.stderr, flush=True)

    def growth_exponent(self, impl: str, shape: str, phase: str, big: bool) -> float:
        """Exponent k in t ~ n^k from the two largest measured sizes (default 2)."""
        for sh, bg in ((shape, big), ('chain', False)):
            pts = sorted((n, median(c['runs'], 'wall')) for (i, s, n, ph), c in self.res.items()
                         if i == impl and s == sh and ph == phase and 'runs' in c
                         and (n >= BIG) == bg)
            if len(pts) >= 2:
                (n1, t1), (n2, t2) = pts[-2], pts[-1]
                if n2 > n1 and t1 > 0 and t2 > 0:
                    return min(3.0, max(1.0, math.log(t2 / t1) / math.log(n2 / n1)))
        return 2.0

    def estimate(self, impl: str, shape: str, n: int, phase: str) -> Optional[float]:
        """Extrapolated wall time of one run, from the largest smaller size measured."""
        big = n >= BIG
        pts = sorted((m, median(c['runs'], 'wall')) for (i, s, m, ph), c in self.res.items()
                     if i == impl and s == shape and ph == phase and 'runs' in c and m < n
                     and (m >= BIG) == big)
        if not pts:
            return None
        m, t = pts[-1]
        return t * (n / m) ** self.growth_exponent(impl, shape, phase, big)

    def measure(self, impl_name: str, shape: str, n: int) -> None:
        """Cold runs (fresh stores) then warm runs on the last cold store."""
        impl = self.impls[impl_name]
        big = n >= BIG
        skip_budget = self.a.big_budget if big else self.a.skip_budget
        ests = [self.estimate(impl_name, shape, n, ph) for ph in ('cold', 'warm')]
        if ests[0] is not None and ests[1] is not None:
            if ests[0] + ests[1] > skip_budget:
                k = self.growth_exponent(impl_name, shape, 'warm', big)
                why = 'quadratic' if k >= 1.7 else f'growth n^{k:.1f}'
                for ph, e in zip(('cold', 'warm'), ests):
                    self.res[(impl_name, shape, n, ph)] = {
                        'skipped': f'skipped ({why}, est. {e:.0f}s)'}
                self.log(f'[{impl_name}] {shape}-{n}: skipped (est. cold {ests[0]:.0f}s '
                         f'+ warm {ests[1]:.0f}s > budget {skip_budget:.0f}s)')
                return
        timeout = self.a.timeout if not big else max(self.a.timeout, 2 * skip_budget)
        root: Optional[str] = None
        try:
            for phase in ('cold', 'warm'):
                runs: List[Dict[str, Any]] = []
                spent = 0.0
                reps = 1 if (big and phase == 'cold') else self.a.repeat
                while len(runs) < reps and (not runs or spent < self.a.cell_budget):
                    if phase == 'cold':
                        if root is not None:
                            rmtree_store(root)
                        root = tempfile.mkdtemp(prefix=f'plx-bench-{impl_name}-',
                                                dir=self.a.big_scratch if big
                                                else self.a.scratch)
                    assert root is not None
                    try:
                        r = run_one(impl, shape, n, root, n if phase == 'cold' else 0, timeout)
                    except RunError as e:
                        self.res[(impl_name, shape, n, phase)] = {'error': str(e)}
                        if phase == 'cold':
                            self.res[(impl_name, shape, n, 'warm')] = {
                                'error': 'not run (cold failed)'}
                        self.log(f'[{impl_name}] {shape}-{n} {phase}: ERROR')
                        return
                    runs.append(r)
                    spent += r['wall']
                    self.log(f'[{impl_name}] {shape}-{n} {phase} #{len(runs)}: '
                             f'inst {fmt(r["instantiate"])} real {fmt(r["realize"])} '
                             f'(process {fmt(r["wall"])})')
                self.res[(impl_name, shape, n, phase)] = {'runs': runs}
        finally:
            if root is not None:
                rmtree_store(root)

    def run(self) -> None:
        """Measure every (workload, implementation) of the plan in order."""
        plan = QUICK_PLAN if self.a.quick else FULL_PLAN
        self.plan = plan
        for shape, n, impls in plan:
            for impl in impls:
                if impl in self.impls:
                    self.measure(impl, shape, n)


def fmt(t: Optional[float]) -> str:
    """Seconds as a short human string (ms below one second)."""
    if t is None:
        return '-'
    if t < 1.0:
        return f'{t * 1000:.1f}ms'
    return f'{t:.2f}s'


def ratio(a: Optional[float], b: Optional[float]) -> str:
    """anchor/ours as 'N.Nx'."""
    if a is None or b is None or b <= 0:
        return '-'
    r = a / b
    return f'{r:.0f}x' if r >= 100 else f'{r:.1f}x'


def report(b: Bench) -> int:
    """Print the comparison table, growth and targets; return exit status."""
    a = b.a
    print('pylightnix benchmark: anchor = pylightnix 0.1.0 (PyPI), ours = this repository')
    for name, impl in b.impls.items():
        print(f'  {name:6s} {impl.describe()}')
    disk = a.scratch or tempfile.gettempdir()
    bigd = a.big_scratch or disk
    print(f'  scratch stores under {disk} ({fs_type(disk)}); workloads marked * '
          f'({BIG}+ stages) under {bigd} ({fs_type(bigd)})')
    print(f'  median of up to {a.repeat} runs per cell (fewer when a cell exceeds '
          f'{a.cell_budget:.0f}s); times exclude interpreter start-up and import')
    print()
    hdr = (f'{"workload":13s} {"phase":5s} | {"anchor: inst":>12s} {"realize":>9s} {"total":>9s} '
           f'| {"ours: inst":>10s} {"realize":>9s} {"total":>9s} '
           f'| {"ratio real":>10s} {"total":>7s} | {"ours ms/stage":>13s} {"runs a/o":>8s}')
    print(hdr)
    print('-' * len(hdr))
    for shape, n, _ in b.plan:
        for phase in ('cold', 'warm'):
            cells = {i: b.res.get((i, shape, n, phase)) for i in ('anchor', 'ours')}
            cols: Dict[str, Tuple[str, str, str]] = {}
            med: Dict[str, Dict[str, float]] = {}
            nruns: Dict[str, str] = {}
            for i, c in cells.items():
                if c is None:
                    cols[i] = ('n/a', '', '')
                    nruns[i] = '-'
                elif 'runs' in c:
                    med[i] = {k: median(c['runs'], k) for k in ('instantiate', 'realize', 'total')}
                    cols[i] = (fmt(med[i]['instantiate']), fmt(med[i]['realize']),
                               fmt(med[i]['total']))
                    nruns[i] = str(len(c['runs']))
                elif 'skipped' in c:
                    cols[i] = (c['skipped'], '', '')
                    nruns[i] = '0'
                else:
                    cols[i] = ('ERROR', '', '')
                    nruns[i] = '0'
            r_real = ratio(med.get('anchor', {}).get('realize'), med.get('ours', {}).get('realize'))
            r_tot = ratio(med.get('anchor', {}).get('total'), med.get('ours', {}).get('total'))
            per = (f'{med["ours"]["total"] / n * 1000:.3f}'
                   if 'ours' in med and phase == 'cold' else '')

            def cell3(c: Tuple[str, str, str], w0: int) -> str:
                if not c[1] and not c[2] and len(c[0]) > w0:
                    return f'{c[0]:>{w0 + 20}s}'
                return f'{c[0]:>{w0}s} {c[1]:>9s} {c[2]:>9s}'
            label = f'{shape}-{n}' + ('*' if n >= BIG else '')
            print(f'{label:13s} {phase:5s} | {cell3(cols["anchor"], 12)} '
                  f'| {cell3(cols["ours"], 10)} | {r_real:>10s} {r_tot:>7s} | {per:>13s} '
                  f'{nruns["anchor"] + "/" + nruns["ours"]:>8s}')
    print()
    print('ratio = anchor time / ours time (higher is better for ours); '
          'ms/stage = cold (instantiate+realize) / stages')

    def m(impl: str, shape: str, n: int, phase: str, key: str) -> Optional[float]:
        c = b.res.get((impl, shape, n, phase))
        return median(c['runs'], key) if c and 'runs' in c else None

    sizes = sorted({n for s, n, _ in b.plan if s == 'chain'})
    lo, hi = sizes[0], sizes[-1]
    print()
    print('Growth with chain length (time ratio; linear = size ratio):')
    growth: Dict[Tuple[str, str, str], Optional[float]] = {}
    for impl in ('anchor', 'ours'):
        top = max((n for n in sizes if m(impl, 'chain', n, 'cold', 'total') is not None
                   and m(impl, 'chain', n, 'warm', 'total') is not None), default=None)
        if top is None or top == lo:
            print(f'  {impl:6s} n/a')
            continue
        parts = []
        for phase in ('cold', 'warm'):
            for key in ('realize', 'total'):
                t0, t1 = m(impl, 'chain', lo, phase, key), m(impl, 'chain', top, phase, key)
                g = t1 / t0 if t0 and t1 else None
                if top == hi:
                    growth[(impl, phase, key)] = g
                parts.append(f'{phase} {key} {fmt_g(g)}')
        line = (f'  {impl:6s} chain-{lo} -> chain-{top} (linear {top / lo:.1f}x): '
                + ', '.join(parts))
        if top != hi:
            c = b.res.get((impl, 'chain', hi, 'warm'), {})
            line += f'; chain-{hi} ' + (c.get('skipped') or 'n/a')
        print(line)
    wides = sorted({n for s, n, _ in b.plan if s == 'wide'})
    parts = []
    prev: Optional[Tuple[int, float]] = None
    for n in wides:
        t = m('ours', 'wide', n, 'warm', 'total')
        parts.append(f'wide-{n}{"*" if n >= BIG else ""} {fmt(t)}'
                     + (f' ({t / prev[1]:.1f}x for {n / prev[0]:.0f}x stages)'
                        if t and prev else ''))
        prev = (n, t) if t else None
    print('Growth wide, ours warm instantiate+realize: ' + ', '.join(parts))

    print()
    print('Targets (issue 2, section 10), ours:')
    status = 0
    if a.quick:
        print('  (quick mode: sizes are smaller than the targets; markers are indicative only)')
    c1000 = 1000 if not a.quick else 100
    wide_big = 100000 if not a.quick else BIG

    def mark(ok: Optional[bool]) -> str:
        return '[ n/a]' if ok is None else ('[PASS]' if ok else '[MISS]')
    t = m('ours', 'chain', c1000, 'warm', 'realize')
    tt = m('ours', 'chain', c1000, 'warm', 'total')
    print(f'  {mark(None if t is None else t <= 0.050)} warm {c1000}-chain realize <= 50 ms: '
          f'{fmt(t)} (instantiate+realize {fmt(tt)})')
    t = m('ours', 'chain', c1000, 'cold', 'total')
    tr = m('ours', 'chain', c1000, 'cold', 'realize')
    per = t / c1000 * 1000 if t is not None else None
    print(f'  {mark(None if per is None else per <= 1.0)} cold <= 1 ms per trivial stage '
          f'(chain-{c1000}, instantiate+realize): '
          + (f'{per:.3f} ms/stage (realize only {tr / c1000 * 1000:.3f})'
             if per is not None and tr is not None else 'n/a'))
    t = m('ours', 'wide', BIG, 'cold', 'total')
    if t is not None:
        print(f'         (cold on the * scratch, wide-{BIG}: {t / BIG * 1000:.3f} ms/stage)')
    t = m('ours', 'wide', wide_big, 'warm', 'total')
    tr = m('ours', 'wide', wide_big, 'warm', 'realize')
    c = b.res.get(('ours', 'wide', wide_big, 'warm'), {})
    if t is not None:
        verdict, what = mark(t <= 5.0), f'{fmt(t)} (realize only {fmt(tr)})'
    elif 'skipped' in c:
        verdict, what = '[MISS]', c['skipped']
    elif 'error' in c:
        verdict, what = '[MISS]', 'ERROR (below)'
    else:
        verdict, what = mark(None), 'n/a'
    print(f'  {verdict} wide {wide_big} stages warm <= 5 s (instantiate+realize): {what}')
    gs = [growth.get(('ours', ph, 'total')) for ph in ('cold', 'warm')]
    ok = None if None in gs else all(g <= 1.5 * hi / lo for g in gs)  # type: ignore[operator]
    print(f'  {mark(ok)} growth {lo}->{hi} about {hi / lo:.0f}x (<= {1.5 * hi / lo:.0f}x), '
          f'instantiate+realize: ' + ', '.join(
              f'{ph} {fmt_g(g)}' for ph, g in zip(('cold', 'warm'), gs)))

    errors = [(k, c['error']) for k, c in b.res.items() if 'error' in c
              and not c['error'].startswith('not run')]
    if errors:
        status = 1
        print()
        print('Errors:')
        for (impl, shape, n, phase), e in errors:
            print(f'--- {impl} {shape}-{n} {phase}:')
            print('    ' + e.replace('\n', '\n    '))
    return status


def fs_type(path: str) -> str:
    """Filesystem type of the mount holding `path` (from /proc/mounts)."""
    best, typ = '', '?'
    try:
        real = os.path.realpath(path)
        with open('/proc/mounts') as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and (real == parts[1] or real.startswith(
                        parts[1].rstrip('/') + '/')) and len(parts[1]) > len(best):
                    best, typ = parts[1], parts[2]
    except OSError:
        pass
    return typ


def fmt_g(g: Optional[float]) -> str:
    """Growth factor or n/a."""
    return 'n/a' if g is None else f'{g:.1f}x'


def main() -> int:
    """CLI entry: parse options, measure, print the report, save JSON."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--anchor-python', help='interpreter with pylightnix==0.1.0')
    ap.add_argument('--ours-python', help='interpreter for this repository')
    ap.add_argument('--ours-path', help='PYTHONPATH that makes ours importable')
    ap.add_argument('--only', choices=['anchor', 'ours'], help='measure one side only')
    ap.add_argument('--quick', action='store_true', help='small sizes, for a smoke test')
    ap.add_argument('--repeat', type=int, default=3, help='runs per cell (median)')
    ap.add_argument('--cell-budget', type=float, default=20.0,
                    help='stop repeating a cell once its runs took this many seconds')
    ap.add_argument('--skip-budget', type=float, default=150.0,
                    help='skip a size whose estimated cold+warm run exceeds this (s)')
    ap.add_argument('--big-budget', type=float, default=400.0,
                    help=f'same, for workloads of {BIG}+ stages (s)')
    ap.add_argument('--timeout', type=float, default=300.0, help='per-process timeout (s)')
    ap.add_argument('--scratch', default=None, help='parent dir of scratch stores')
    ap.add_argument('--big-scratch', default=None,
                    help=f'parent dir of stores for {BIG}+ stages (default /dev/shm if '
                    'writable, else --scratch)')
    ap.add_argument('--json', default=None, help='also save raw results here')
    a = ap.parse_args()
    if a.big_scratch is None:
        a.big_scratch = '/dev/shm' if os.access('/dev/shm', os.W_OK) else a.scratch
    impls: Dict[str, Impl] = {}
    if a.only != 'ours':
        if not a.anchor_python:
            ap.error('--anchor-python is required')
        impls['anchor'] = Impl('anchor', a.anchor_python, None)
    if a.only != 'anchor':
        if not a.ours_python:
            ap.error('--ours-python is required')
        impls['ours'] = Impl('ours', a.ours_python, a.ours_path)
    b = Bench(a, impls)
    t0 = time.perf_counter()
    b.run()
    status = report(b)
    print()
    print(f'bench wall time: {time.perf_counter() - t0:.0f}s')
    if a.json:
        with open(a.json, 'w') as f:
            json.dump([{'impl': k[0], 'shape': k[1], 'n': k[2], 'phase': k[3], **v}
                       for k, v in b.res.items()], f, indent=1)
    return status


if __name__ == '__main__':
    sys.exit(main())
