"""CI's own rules: in CI (CI=true) a skip for a missing service is a failure,
and warnings from the workbench's own code are errors in every test."""

from __future__ import annotations

import warnings

import pytest

from conftest import REPO

pytest_plugins = ["pytester"]

INNER = '''
import pytest

@pytest.mark.browser
def test_needs_chromium():
    pytest.skip("no chromium on PATH")

@pytest.mark.spark
@pytest.mark.skipif(True, reason="Java is not installed")
def test_needs_java():
    pass

@pytest.mark.postgres
def test_needs_postgres(server):
    pass

@pytest.fixture
def server():
    pytest.skip("no PostgreSQL server")

def test_plain_skip():
    pytest.skip("not a service")
'''


@pytest.fixture
def inner(pytester):
    pytester.makeconftest(f"""
import importlib.util
spec = importlib.util.spec_from_file_location("workbench_conftest", {str(REPO / "tests" / "conftest.py")!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
pytest_runtest_makereport = mod.pytest_runtest_makereport

def pytest_configure(config):
    for m in mod.REQUIRED_IN_CI:
        config.addinivalue_line("markers", m + ": needs a service")
""")
    pytester.makepyfile(INNER)
    return pytester


def test_outside_ci_a_missing_service_skips(inner, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    inner.runpytest("-p", "no:cacheprovider").assert_outcomes(skipped=4)


def test_in_ci_a_missing_service_fails(inner, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = inner.runpytest("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(failed=1, errors=2, skipped=1)  # a skip in setup (a fixture, skipif) fails as an error
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*CI=true and this browser test skipped*no chromium on PATH*",
                                 "*CI=true and this spark test skipped*Java is not installed*",
                                 "*CI=true and this postgres test skipped*no PostgreSQL server*"])


def test_warnings_from_workbench_code_are_errors():
    """pyproject's filterwarnings: a warning attributed to a workbench module raises."""
    from workbench.errors import WorkbenchWarning

    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old call", DeprecationWarning, "x.py", 1, module="workbench.models.survival")
    with pytest.raises(WorkbenchWarning):
        warnings.warn_explicit("check this", WorkbenchWarning, "x.py", 1, module="workbench")
    # third-party deprecations stay ignored
    warnings.warn_explicit("old call", DeprecationWarning, "x.py", 1, module="pandas.core.frame")
    warnings.warn_explicit("old call", DeprecationWarning, "x.py", 1, module="workbenchy")
