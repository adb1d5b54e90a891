"""Hostile dataset folders (tests/bad_datasets.py): each ends in exactly the
violations it should (one cause, one violation, each naming what, where and
what to do), or loads with the notices it should; ``workbench validate``
exits 2 with the message, never a traceback, never a hang."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
from bad_datasets import CASES

from workbench.cli import main
from workbench.data import load_dataset
from workbench.errors import DataError, DataWarning

#: cases that would block a reader forever if a check regressed: a hang guard (not a speed check)
BLOCKING = {"users_fifo", "events_fifo", "meta_fifo", "users_link_to_dev_zero", "events_checked_on_their_own_when_users_cannot_be_read"}


def params(names):
    return [pytest.param(n, marks=pytest.mark.timeout(120)) if n in BLOCKING else n for n in names]


ERRORS = params(name for name, c in CASES.items() if c.errors)
VALID = params(name for name, c in CASES.items() if not c.errors)


def build(name, tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    return CASES[name].build(folder) or folder


def matches(v, table, column, words):
    return (table == "*" or v.table == table) and (column is None or v.column == column) and words in v.rule


@pytest.mark.parametrize("name", ERRORS)
def test_each_hostile_folder_ends_in_exactly_its_violations(name, tmp_path):
    case = CASES[name]
    with pytest.raises(DataError) as info:
        load_dataset(build(name, tmp_path))
    found = info.value.violations
    text = [str(v) for v in found]
    assert len(found) == len(case.errors), f"expected {len(case.errors)} violation(s), got: {text}"
    for expected in case.errors:
        assert any(matches(v, *expected) for v in found), f"no violation {expected} in {text}"
    notes = " | ".join(info.value.notes)
    for words in case.notes:
        assert words in notes, f"no note with {words!r} in {notes!r}"


@pytest.mark.parametrize("name", VALID)
def test_hostile_but_valid_folders_load_with_their_notices(name, tmp_path):
    folder = build(name, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset(folder)
    notes = " | ".join(ds.notices)
    for words in CASES[name].notes:
        assert words in notes, f"no note with {words!r} in {notes!r}"
    issued = [w for w in caught if issubclass(w.category, DataWarning)]
    if CASES[name].notes:
        assert len(issued) == 1 and all(n in str(issued[0].message) for n in ds.notices)
    else:
        assert not ds.notices and not issued
    assert ds.row_counts()["users"] > 0


@pytest.mark.parametrize("name", params(CASES))
def test_cli_validate_says_it_once_and_exits_2(name, tmp_path, capsys):
    case = CASES[name]
    code = main(["validate", str(build(name, tmp_path))])  # an exception here is a traceback for the user
    out, err = capsys.readouterr()
    if case.errors:
        assert code == 2, out + err
        for _, _, words in case.errors:
            assert err.count(words) == 1, f"{words!r} should appear once in:\n{err}"
        assert "(0 rows)" not in err
    else:
        assert code == 0, err
        assert "valid" in out
    for words in case.notes:
        assert words in out + err


def test_every_finding_of_the_hostile_pass_has_a_case():
    assert len(CASES) >= 110
    assert len(ERRORS) >= 100


@pytest.mark.parametrize("name", sorted(BLOCKING))
def test_special_files_never_hang_the_command(name, tmp_path):
    """The command runs in a child with a generous timeout: a hang fails the
    test instead of stopping the suite (this is not a speed check)."""
    folder = build(name, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "validate", str(folder)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "not a regular file" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="root reads any file; the child drops from root to nobody")
@pytest.mark.parametrize("unreadable", ["users.csv", "dataset.yml", "."])
def test_a_file_without_read_permission_is_named(unreadable):
    """The kernel refuses the read: a child validates a good folder (so every
    module is imported), drops from root to nobody, and validates a folder
    whose file nobody may not read."""
    import pwd
    import shutil
    import tempfile
    from pathlib import Path

    import bad_datasets

    top = Path(tempfile.mkdtemp(prefix="wb-perm-"))
    try:
        os.chmod(top, 0o755)
        for name in ("good", "bad"):
            (top / name).mkdir(mode=0o755)
            bad_datasets.base(top / name)
            bad_datasets.text(top / name, "dataset.yml", "name: x\n")
        os.chmod(top / "bad" / unreadable, 0o000 if unreadable != "." else 0o711)  # a folder others may enter, not list
        nobody = pwd.getpwnam("nobody")
        code = (
            "import os, sys; from workbench.cli import main\n"
            "assert main(['validate', sys.argv[1]]) == 0\n"
            f"os.setgid({nobody.pw_gid}); os.setuid({nobody.pw_uid})\n"
            "sys.exit(main(['validate', sys.argv[2]]))"
        )
        proc = subprocess.run([sys.executable, "-c", code, str(top / "good"), str(top / "bad")],
                              capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(top)
    assert proc.returncode == 2, proc.stderr
    if unreadable == ".":  # the folder: one error, not also every table missing
        assert "the folder cannot be listed: permission denied; make it readable for this user (e.g. chmod a+rx bad)" in proc.stderr
        assert "breaks the contract in 1 way:" in proc.stderr
    else:
        assert f"{unreadable} cannot be read: permission denied; make it readable for this user (e.g. chmod a+r {unreadable})" in proc.stderr
    assert "Traceback" not in proc.stderr


#: Parquet cases whose verdict comes from the probe's counts, minima, maxima and sums (NaN and infinity propagate on Spark too)
ON_SPARK = ["amount_nan_in_parquet", "amount_inf_in_parquet", "amounts_inf_and_minus_inf_in_parquet", "amount_nan_on_a_cancel_in_parquet",
            "signup_of_the_wrong_type", "empty_user_id_in_parquet", "zero_users_parquet", "amount_of_the_wrong_type", "event_type_of_the_wrong_type"]


@pytest.mark.spark
@pytest.mark.parametrize("name", ON_SPARK)
def test_the_same_verdicts_on_pyspark(name, tmp_path):
    """The session is the parity test's (same settings; getOrCreate shares it)."""
    try:
        import ibis
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.skip("pyspark is not installed")
    import shutil

    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        pytest.skip("PySpark needs Java 17")
    spark = (
        SparkSession.builder.master("local[2]").appName("workbench-parity").config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false").config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC").getOrCreate()
    )
    case = CASES[name]
    with pytest.raises(DataError) as info:
        load_dataset(build(name, tmp_path), backend=ibis.pyspark.connect(spark))
    found = info.value.violations
    assert len(found) == len(case.errors), [str(v) for v in found]
    for expected in case.errors:
        assert any(matches(v, *expected) for v in found), (expected, [str(v) for v in found])
