"""Overview plots: what the data-overview report draws."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from workbench import tables as wt  # noqa: E402
from workbench.data import load_dataset  # noqa: E402
from workbench.plots.overview import kpi_trends  # noqa: E402

from test_tables import write_handmade  # noqa: E402


@pytest.fixture(scope="module")
def hm(tmp_path_factory):
    return load_dataset(write_handmade(tmp_path_factory.mktemp("handmade")))


def test_kpi_plot_marks_the_periods_cut_short(hm):
    """The last week ends after the observation end: drawn dashed with a legend
    entry, so its drop is not read as a decline; a table without the flag
    (e.g. a dataset's reported kpis) draws plain lines."""
    k = wt.kpis(hm).to_pandas()
    fig = kpi_trends(k, period="week")
    first = fig.axes[0]
    dashed = [ln for ln in first.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and len(dashed[0].get_xdata()) == 2  # from the last complete week to the cut-short one
    assert [t.get_text() for t in first.get_legend().get_texts()] == ["cut short by the observation end"]
    plt.close(fig)
    fig = kpi_trends(k.drop(columns="complete"), period="week")
    assert not [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert fig.axes[0].get_legend() is None
    plt.close(fig)


def test_purchase_amount_histogram_from_the_table(hm):
    from workbench.plots.overview import binned_distribution

    bins = wt.purchase_amounts(hm, bins_per_decade=1).to_pandas()
    fig = binned_distribution(bins, low="low", high="high", weight="purchases", xlabel="amount", title="Purchase amounts")
    ax = fig.axes[0]
    assert [round(p.get_height()) for p in ax.patches] == [2, 4] and [p.get_width() for p in ax.patches] == [9.0, 90.0]
    assert ax.get_ylabel() == "purchases" and ax.get_xscale() == "log"
    plt.close(fig)
