"""The cold path on this disk: wide-N realized cold by this project, by its
anchor (pylightnix 0.1.0) and by a raw loop, interleaved in the same run.

The raw loop is the floor of a store: for each of N folders, ``mkdir`` a
temporary folder, write one small file into it, ``rename`` it into place
(what a trivial stage writes, with no bookkeeping at all). The disk's speed
varies a lot from minute to minute, so every round runs the three one after
the other and reports two ratios of that round:

  anchor/ours   target >= 2   (ours is at least twice as fast as 0.1.0)
  ours/raw      target <= 2   (ours costs at most twice the raw loop)

Times are instantiate + realize of a fresh process on an empty store (see
workloads.py); the raw loop is timed the same way, in its own process. Also
printed: the store entries each implementation leaves per stage, not counting
the realizer's own file.

    bench/run --cold [--n 1000] [--rounds 3]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from compare import Impl, rmtree_store, run_one  # noqa: E402


def raw_loop(n: int, root: str) -> float:
    """mkdir + write + rename of n folders; seconds."""
    tmp, store = os.path.join(root, 'tmp'), os.path.join(root, 'store')
    os.mkdir(tmp)
    os.mkdir(store)
    t0 = time.perf_counter()
    for i in range(n):
        p = os.path.join(tmp, str(i))
        os.mkdir(p)
        with open(os.path.join(p, 'out'), 'w') as f:
            f.write('x')
        os.rename(p, os.path.join(store, str(i)))
    return time.perf_counter() - t0


def run_raw(python: str, n: int, root: str) -> float:
    """raw_loop in a fresh process (as the workloads run)."""
    p = subprocess.run([python, os.path.abspath(__file__), '--raw-loop', str(n), root],
                       capture_output=True, text=True, check=True, timeout=600)
    return float(p.stdout.strip())


def entries_per_stage(root: str, n: int) -> float:
    """Files and folders under the store root per stage, the realizers' 'out' files left out."""
    count = 0
    for _, dirs, files in os.walk(root):
        count += len(dirs) + len([f for f in files if f != 'out' and not f.startswith('result-')])
    return count / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--anchor-python')
    ap.add_argument('--ours-python')
    ap.add_argument('--ours-path')
    ap.add_argument('--n', type=int, default=1000)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--scratch', default=os.environ.get('BENCH_SCRATCH') or None)
    ap.add_argument('--raw-loop', nargs=2, metavar=('N', 'DIR'), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.raw_loop:
        print(raw_loop(int(a.raw_loop[0]), a.raw_loop[1]))
        return 0
    if not (a.anchor_python and a.ours_python and a.ours_path):
        ap.error('--anchor-python, --ours-python and --ours-path are required (bench/run --cold sets them)')
    abspath = os.path.abspath  # the workloads run in their scratch folders
    impls = {'anchor': Impl('anchor', abspath(a.anchor_python), None),
             'ours': Impl('ours', abspath(a.ours_python), abspath(a.ours_path))}
    print(f'wide-{a.n} cold, {a.rounds} rounds; scratch {a.scratch or tempfile.gettempdir()}')
    for name, impl in impls.items():
        print(f'  {name}: {impl.describe()}')
    ratios: Dict[str, List[float]] = {'anchor/ours': [], 'ours/raw': []}
    for r in range(a.rounds):
        t: Dict[str, float] = {}
        per: Dict[str, float] = {}
        for name in ('anchor', 'ours', 'raw'):
            root = tempfile.mkdtemp(prefix=f'plx-cold-{name}-', dir=a.scratch)
            try:
                if name == 'raw':
                    t[name] = run_raw(a.ours_python, a.n, root)
                else:
                    t[name] = run_one(impls[name], 'wide', a.n, root, a.n, timeout=900)['total']
                per[name] = entries_per_stage(root, a.n)
            finally:
                rmtree_store(root)
        ratios['anchor/ours'].append(t['anchor'] / t['ours'])
        ratios['ours/raw'].append(t['ours'] / t['raw'])
        print(f'round {r + 1}: anchor/ours {ratios["anchor/ours"][-1]:.2f}x (target >= 2), '
              f'ours/raw {ratios["ours/raw"][-1]:.2f}x (target <= 2); entries per stage: '
              + ', '.join(f'{k} {v:.2f}' for k, v in per.items()), flush=True)
    med = {k: statistics.median(v) for k, v in ratios.items()}
    print(f'median: anchor/ours {med["anchor/ours"]:.2f}x, ours/raw {med["ours/raw"]:.2f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
