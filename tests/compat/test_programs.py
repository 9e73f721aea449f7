"""Programs written in the original pylightnix's style run unchanged here."""
import pytest

from compat_support import programs, run_program


@pytest.mark.parametrize("program", programs())
def test_program_runs_unchanged(program):
    r = run_program(program)
    assert r.passed, f"{program} exited {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"


def test_assertion_errors_survive_python_O():
    """Validation errors are raised explicitly, so -O (which strips assert) keeps them."""
    r = run_program("except_assertion.py", extra_args=["-O"])
    assert r.passed, f"exited {r.returncode}\n{r.stdout}\n{r.stderr}"
