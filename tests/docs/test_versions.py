"""The Python versions the project claims are the ones it tests: `./dev test`'s list, the
package's classifiers, the README's table and docs/versions.md's table say the same."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _table_versions(text: str) -> list:
    return sorted({m.group(1) for m in re.finditer(r"^\| (3\.\d+)\.\d+", text, re.M)},
                  key=lambda v: tuple(map(int, v.split("."))))


def test_claimed_versions_agree_everywhere() -> None:
    dev = (ROOT / "dev").read_text()
    tested = re.search(r'test_pythons="\$\{PYLIGHTNIX_TEST_PYTHONS-([0-9. ]+)\}"', dev).group(1).split()
    pyproject = (ROOT / "pyproject.toml").read_text()
    classified = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject)
    assert 'requires-python = ">=' + tested[0] + '"' in pyproject
    assert classified == tested
    assert _table_versions((ROOT / "README.md").read_text()) == tested
    assert _table_versions((ROOT / "docs" / "versions.md").read_text()) == tested
