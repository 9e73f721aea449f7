#!/usr/bin/env python3
"""Cross-check of tests/compat: run its programs, written for the original
pylightnix, against pylightnix 0.1.0 (bench/.venv-anchor, set up by bench/run)
and against this project. A program that passes on 0.1.0 is right about the
original; one that fails there must say why in its ``# anchor: fails -- ...``
line (a behaviour of the design document's date that 0.1.0 changed, or a
deliberate strictness of this project). Not part of CI.

    .venv/bin/python bench/compat_crosscheck.py [--anchor-python PATH] [-v]

Exit status 1 if a program fails on this project, or if its 0.1.0 outcome
contradicts its ``# anchor:`` line.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "compat"))

from compat_support import anchor_note, programs, run_program  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--anchor-python", default=os.path.join(HERE, ".venv-anchor", "bin", "python"))
    ap.add_argument("-v", "--verbose", action="store_true", help="print the output of failing runs")
    a = ap.parse_args()
    if not os.path.exists(a.anchor_python):
        print(f"no anchor interpreter at {a.anchor_python}; run bench/run --quick once to create it",
              file=sys.stderr)
        return 2
    bad = 0
    print(f"{'program':24} {'0.1.0':6} {'ours':6} verdict")
    for prog in programs():
        anchor = run_program(prog, python=a.anchor_python, ours=False)
        ours = run_program(prog)
        note = anchor_note(prog)
        if not ours.passed:
            verdict = "FAIL: does not run here"
        elif anchor.passed and note is None:
            verdict = "ok: same as the original"
        elif not anchor.passed and note is not None:
            verdict = f"ok: known difference ({note})"
        elif anchor.passed:
            verdict = "CHECK: passes on 0.1.0 although marked '# anchor: fails'"
        else:
            verdict = "CHECK: fails on 0.1.0 and is not marked"
        bad += not verdict.startswith("ok")
        print(f"{prog:24} {'pass' if anchor.passed else 'fail':6} {'pass' if ours.passed else 'fail':6} {verdict}")
        if a.verbose:
            for who, r in (("0.1.0", anchor), ("ours", ours)):
                if not r.passed:
                    tail = (r.stderr.strip().splitlines() or r.stdout.strip().splitlines() or ["(no output)"])[-1]
                    print(f"    {who}: exit {r.returncode}: {tail}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
