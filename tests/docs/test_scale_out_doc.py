"""docs/scale-out.md's first snippet runs as printed (its Dask lines need a cluster and are
left out): every name it uses comes from its own imports."""
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_first_snippet_runs_as_printed(tmp_path: Path) -> None:
    text = (REPO / "docs" / "scale-out.md").read_text()
    snippet = re.search(r"^```python\n(.*?)\n```", text, re.S | re.M).group(1)
    lines = [line for line in snippet.splitlines() if "Dask(" not in line]
    assert len(lines) >= len(snippet.splitlines()) - 3, lines
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYLIGHTNIX_") and k != "PYTHONPATH"}
    env.update(HOME=str(tmp_path), PYLIGHTNIX_ROOT=str(tmp_path / "root"), PYLIGHTNIX_PROGRESS="0")
    code = "\n".join(lines + ["print(realize(closure))"])
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip().startswith("rref:") and p.stdout.strip().endswith("-summary"), p.stdout
