"""The one look of every report figure: a theme, a palette in which the same
thing keeps its colour in every plot, and axis formatters for money, counts
and shares.

Every figure function in :mod:`workbench.plots` calls :func:`apply` first and
takes its colours from :func:`color`, so "co-creators" are the same orange in
the retention curves, the hazard-ratio chart and the referral chart, and
BG/NBD is the same blue in every CLV plot. Text that comes from a dataset
(segment names, channels, arms) goes through :func:`literal`, so a ``$`` in a
name never switches matplotlib into math mode.
"""

from __future__ import annotations

import math

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

#: colour-blind-safe base palette (Okabe-Ito), in the order unnamed series take it
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
INK = "#1f2933"
MUTED = "#7b8794"
TRUTH = "#D55E00"  # planted truth markers

#: what keeps which colour, everywhere
ROLES = {
    # the comparison at the heart of the co-creation report
    "others": "#0072B2",
    "co-creators": "#E69F00",
    # segments and the default groups of the simulator and most exports
    "mainstream": "#0072B2",
    "enthusiast": "#E69F00",
    "all": INK,
    # experiments
    "control": "#7b8794",
    "treatment": "#009E73",
    # models
    "actual": INK,
    "observed": INK,
    "BG/NBD": "#0072B2",
    "Pareto/NBD": "#E69F00",
    "MBG/NBD": "#009E73",
    "BG/BB": "#CC79A7",
    "Gamma-Gamma": "#56B4E9",
    "sBG": "#CC79A7",
    "Bass": "#0072B2",
    "Bass (continuous)": "#009E73",
    "linear": "#0072B2",
    "n log n": "#009E73",
    "Metcalfe": "#CC79A7",
    "power law": "#E69F00",
}

_applied = False


def apply() -> None:
    """Set the report theme (idempotent): white grid, readable sizes at the
    page width, no top/right spines, legends and tick labels large enough to
    read in a 1,000-pixel-wide report."""
    global _applied
    mpl.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 100,
        "figure.figsize": (9.5, 4.2),
        "figure.facecolor": "white",
        "axes.facecolor": "white",
        "axes.edgecolor": "#cbd2d9",
        "axes.grid": True,
        "axes.axisbelow": True,
        "grid.color": "#e4e7eb",
        "grid.linewidth": 0.8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 12.5,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
        "axes.labelsize": 11,
        "axes.labelcolor": INK,
        "axes.prop_cycle": mpl.cycler(color=PALETTE),
        "xtick.labelsize": 10,
        "ytick.labelsize": 10,
        "xtick.color": INK,
        "ytick.color": INK,
        "legend.fontsize": 10,
        "legend.frameon": False,
        "font.size": 10.5,
        "text.color": INK,
        "text.usetex": False,
        "axes.formatter.useoffset": False,
        "axes.formatter.limits": (-6, 9),
        "lines.linewidth": 2,
    })
    _applied = True


def color(key, index: int = 0) -> str:
    """The colour of ``key`` (a role in :data:`ROLES`, compared without case),
    else the ``index``-th colour of the palette."""
    if key is not None:
        k = str(key)
        if k in ROLES:
            return ROLES[k]
        lower = {name.lower(): c for name, c in ROLES.items()}
        if k.lower() in lower:
            return lower[k.lower()]
    return PALETTE[index % len(PALETTE)]


def colors(keys) -> list[str]:
    """Colours for ``keys``: each named one its role colour, the others the
    palette colours no named key took, in order."""
    keys = list(keys)
    taken = {ROLES.get(str(k)) for k in keys if str(k) in ROLES}
    free = [c for c in PALETTE if c not in taken] or PALETTE
    out, i = [], 0
    for k in keys:
        if str(k) in ROLES:
            out.append(ROLES[str(k)])
        else:
            out.append(free[i % len(free)])
            i += 1
    return out


def literal(text) -> str:
    """Text from data shown as written (no matplotlib math mode)."""
    return str(text).replace("$", r"\$")


def term_label(term: str) -> str:
    """A model term for people: ``segment[enthusiast]`` -> ``segment: enthusiast``,
    ``exposed`` -> ``co-created``; other names as they are."""
    if term == "exposed":
        return "co-created"
    if "[" in term and term.endswith("]"):
        cov, level = term[:-1].split("[", 1)
        return f"{cov}: {level}"
    return term


def _compact(value: float) -> str:
    v = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M")):
        if abs(v) >= limit:
            return f"{v / limit:,.3g}{suffix}"
    if abs(v) >= 1000 or v == int(v):
        return f"{v:,.0f}"
    return f"{v:,.3g}"


def count_axis(ax, axis: str = "y", integer: bool = True) -> None:
    """Counts with thousands separators (``12,000``; millions as ``1.5M``),
    never 10^n or an offset."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(lambda v, _pos: _compact(v)))
    if integer:
        target.set_major_locator(MaxNLocator(integer=True, nbins="auto"))


def money_axis(ax, currency: str | None = None, axis: str = "y") -> None:
    """Money with thousands separators; the currency goes into the axis
    label (``Revenue (USD)``), not onto every tick."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(lambda v, _pos: _compact(v)))
    if currency:
        label = target.get_label().get_text()
        if currency not in label:
            target.set_label_text(f"{label} ({literal(currency)})" if label else literal(currency))


def percent_axis(ax, axis: str = "y", xmax: float = 1.0, decimals: int | None = None) -> None:
    """Shares as percentages (0.25 shows as 25%)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(PercentFormatter(xmax=xmax, decimals=decimals))


def from_zero(ax, axis: str = "y") -> None:
    """Start a rate axis at zero, so bar heights and gaps are not exaggerated."""
    if axis == "y":
        lo, hi = ax.get_ylim()
        ax.set_ylim(0, max(hi, 0) * 1.05 if hi > 0 else 1)
    else:
        lo, hi = ax.get_xlim()
        ax.set_xlim(0, max(hi, 0) * 1.05 if hi > 0 else 1)


def ratio_axis(ax, axis: str = "x") -> None:
    """A log-scaled axis for ratios (hazard, rate ratios) with plain tick labels and a line at 1."""
    if axis == "x":
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))
        ax.axvline(1.0, color=MUTED, lw=1, ls="--", zorder=1)
    else:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))
        ax.axhline(1.0, color=MUTED, lw=1, ls="--", zorder=1)


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 9.5, height: float = 4.2, **kwargs):
    """``plt.subplots`` in the report style."""
    apply()
    return plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)


def finite(values) -> bool:
    return all(math.isfinite(float(v)) for v in values)


__all__ = [
    "PALETTE", "ROLES", "apply", "color", "colors", "count_axis", "from_zero", "literal", "money_axis",
    "new_figure", "percent_axis", "ratio_axis",
]  # fmt: skip
