"""The per-customer value table (workbench.models.clv.customers) and
`workbench tables customers`: the same numbers as the models called by hand,
the model chosen on a holdout, the file written atomically, clear refusals."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from workbench.cli import main
from workbench.data import load_dataset
from workbench.errors import ParameterError
from workbench.models.clv import choose_model, customer_lifetime_value, fit_bgnbd, fit_gamma_gamma, fit_mbgnbd, fit_pareto_nbd, holdout_comparison
from workbench.models.clv.customers import customers
from workbench.tables import repeat_summary

VALUE_COLUMNS = [f"{b}{s}" for b in ("probability_alive", "expected_purchases", "expected_spend", "clv") for s in ("", "_ci_low", "_ci_high")]


@pytest.fixture(scope="module")
def cdnow():
    return load_dataset("cdnow-sample")


def test_named_model_equals_the_models_called_by_hand(cdnow):
    t = customers(cdnow, model="bgnbd", calibration_end="1998-06-30", horizon=26.0, discount_rate=0.05)
    s = repeat_summary(cdnow, time_unit="week", calibration_end="1998-06-30").to_pandas()
    bg = fit_bgnbd(s)
    gg = fit_gamma_gamma(s[(s.frequency > 0) & (s.monetary_value > 0)])
    ref = customer_lifetime_value(bg, gg, s, horizon=26.0, discount_rate=0.05).customer_table()
    assert list(t.columns) == ["user_id", "model", "as_of", *VALUE_COLUMNS]
    assert (t.model == "BG/NBD").all() and (t.as_of == pd.Timestamp("1998-06-30").date()).all()
    assert len(t) == 23_570 // 10 and t.user_id.is_unique
    pd.testing.assert_frame_equal(t[["user_id", *VALUE_COLUMNS]], ref[["user_id", *VALUE_COLUMNS]])
    for b in ("probability_alive", "expected_purchases", "expected_spend", "clv"):
        assert ((t[f"{b}_ci_low"] <= t[b]) & (t[b] <= t[f"{b}_ci_high"])).all()


def test_auto_chooses_on_the_holdout_and_values_as_of_its_end(cdnow):
    t = customers(cdnow, calibration_end="1997-09-30", holdout_end="1998-06-30")
    split = repeat_summary(cdnow, time_unit="week", calibration_end="1997-09-30", holdout_end="1998-06-30").to_pandas()
    choice = choose_model(
        {name: holdout_comparison(f(split), split) for name, f in (("bgnbd", fit_bgnbd), ("pareto_nbd", fit_pareto_nbd), ("mbgnbd", fit_mbgnbd))}
    )
    label = {"bgnbd": "BG/NBD", "pareto_nbd": "Pareto/NBD", "mbgnbd": "MBG/NBD"}[choice.chosen]
    assert (t.model == label).all() and (t.as_of == pd.Timestamp("1998-06-30").date()).all()
    named = customers(cdnow, model=choice.chosen, calibration_end="1998-06-30")
    pd.testing.assert_frame_equal(t, named)  # refitted on everything up to the holdout end


def test_segment_comes_along_when_the_dataset_has_one(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    t = customers(ds, model="bgnbd", time_unit="day", horizon=90.0)
    users = pd.read_parquet(tiny_dataset / "users.parquet").set_index("user_id")
    assert list(t.columns[:4]) == ["user_id", "segment", "model", "as_of"]
    assert (t.segment.to_numpy() == users.loc[t.user_id, "segment"].to_numpy()).all()
    assert np.isfinite(t[VALUE_COLUMNS].to_numpy()).all()


def test_refusals(cdnow):
    with pytest.raises(ParameterError, match="model='auto' chooses the model on a holdout"):
        customers(cdnow, calibration_end="1998-06-30")
    with pytest.raises(ParameterError, match="holdout_end is only used by model='auto'"):
        customers(cdnow, model="bgnbd", holdout_end="1998-06-30")
    with pytest.raises(ParameterError, match="calibration_end 1999-01-01 is outside the purchases"):
        customers(cdnow, model="bgnbd", calibration_end="1999-01-01")
    with pytest.raises(ParameterError, match="model must be 'auto' or one of"):
        customers(cdnow, model="bg")


# ----------------------------------------------------------------- the command
def test_cli_writes_the_table(tmp_path, capsys, cdnow):
    out = tmp_path / "deep" / "customers.parquet"
    rc = main(["tables", "customers", "cdnow-sample", "--out", str(out), "--model", "pareto_nbd", "--calibration-end", "1998-06-30",
               "--horizon", "13", "--discount-rate", "0.2", "--level", "0.9"])
    assert rc == 0
    assert "wrote customers: 2,357 rows x 15 columns" in capsys.readouterr().out
    got = pd.read_parquet(out)
    ref = customers(cdnow, model="pareto_nbd", calibration_end="1998-06-30", horizon=13.0, discount_rate=0.2, level=0.9)
    pd.testing.assert_frame_equal(got[VALUE_COLUMNS], ref[VALUE_COLUMNS])
    assert [p.name for p in out.parent.iterdir()] == ["customers.parquet"]


def test_cli_refusals_write_nothing(tmp_path, capsys):
    out = tmp_path / "c.csv"
    out.write_text("old\n")
    assert main(["tables", "customers", "cdnow-sample", "--out", str(out), "--calibration-end", "1998-06-30"]) == 1
    assert "chooses the model on a holdout" in capsys.readouterr().err
    assert main(["tables", "customers", "cdnow-sample", "--out", str(out), "--bin-days", "7"]) == 1
    assert "--bin-days does not apply to table 'customers'" in capsys.readouterr().err
    assert out.read_text() == "old\n" and list(tmp_path.iterdir()) == [out]


def test_cli_lists_the_model_tables_and_every_option_has_a_flag():
    from workbench.models.exports import MODEL_TABLES
    from workbench.tables.export import table_options

    listed = subprocess.run([sys.executable, "-m", "workbench.cli", "tables", "--list"], capture_output=True, text=True)
    assert listed.returncode == 0 and "tables that fit a model" in listed.stdout
    assert "customers [--model] [--time-unit] [--calibration-end] [--holdout-end] [--horizon] [--discount-rate] [--level]" in listed.stdout
    usage = subprocess.run([sys.executable, "-m", "workbench.cli", "tables", "--help"], capture_output=True, text=True).stdout.split("\n\n")[0]
    for name in MODEL_TABLES:
        for option in table_options(name, MODEL_TABLES):
            assert f"[--{option.replace('_', '-')} " in usage, (name, option)


def test_each_model_table_front_has_its_targets_signature():
    import importlib
    import inspect

    from workbench.models import exports

    assert set(exports.MODEL_TABLES) == set(exports.TARGETS) == set(exports.ROWS)
    for name, front in exports.MODEL_TABLES.items():
        module, attr = exports.TARGETS[name].split(":")
        target = getattr(importlib.import_module(module), attr)
        assert inspect.signature(front).parameters == inspect.signature(target).parameters, name
    probe = subprocess.run([sys.executable, "-c", "import sys, workbench.cli as c; c.build_parser(); print('scipy.optimize' in sys.modules)"],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "False"  # the command's parser does not load the model code
