"""Figure style shared by every figure: the palette, the theme (seaborn's ``ticks`` style and
``paper`` context, adjusted), labels, SVG/PNG output and small table helpers. The palette, labels,
output and table helpers are plain code: seaborn and arviz have nothing for them.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from functools import cache, wraps
from typing import Any, ParamSpec

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from compare_kit.results import EngineName


# --------------------------------------------------------------------------- palette and style

FREQ_COLOR = "#0072B2"  # Okabe-Ito blue
BAYES_COLOR = "#D55E00"  # Okabe-Ito vermillion
NO_POOLING_COLOR = "#009E73"  # Okabe-Ito bluish green
COMPLETE_POOLING_COLOR = "#4D4D4D"
DATA_COLOR = "#1A1A1A"
BAND_COLOR = "#BBBBBB"
# further Okabe-Ito colours, for extra sources and for chains in rank plots
EXTRA_COLORS = ("#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")

FIGURE_WIDTH = 9.0  # inches; 900 px at the default 100 dpi
# Above this many levels a figure stops drawing (or naming) every level: the caterpillar becomes a ranked
# band with a few extremes named, the shrinkage arrows a sample, the dense scatters one embedded image.
# Radon's 85 counties stay below it (every county named).
MANY_LEVELS = 100
RASTER_DPI = 150  # resolution of the parts of an SVG drawn as an embedded PNG (``rasterized=True``)

# What the package style changes in seaborn's "ticks" theme and "paper" context: today's font sizes,
# the one font that ships with matplotlib (seaborn asks for Arial first, which would make the SVG paths
# depend on the machine's fonts), a light grid, no top/right spines, no legend frame, fixed dpi.
_THEME = {
    "font.family": "DejaVu Sans",
    "axes.grid": True,
    "grid.color": "#E6E6E6",
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_CONTEXT = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 10,
}
_OTHER = {  # keys seaborn's style and context do not set
    "legend.frameon": False,
    "figure.titlesize": 12,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "svg.fonttype": "path",
    "text.usetex": False,
}


def package_style() -> dict[str, Any]:
    """The rc settings every figure is drawn with: seaborn's ``ticks`` theme and ``paper`` context
    (line widths and tick sizes for small panels), with the changes above. Only returns a dict:
    seaborn's ``axes_style``/``plotting_context`` set nothing unless used as a context or ``set_*``."""
    return dict(_package_style())


@cache
def _package_style() -> dict[str, Any]:
    import seaborn as sns  # imports pyplot: only when a figure is drawn, never on import

    return {**sns.axes_style("ticks", rc=_THEME), **sns.plotting_context("paper", rc=_CONTEXT), **_OTHER}


class Source(StrEnum):
    """What a line or a curve shows (a figure input's ``kind`` column); its colour follows from it."""

    NO_POOLING = "no_pooling"
    COMPLETE_POOLING = "complete_pooling"
    FREQUENTIST = "frequentist"
    BAYESIAN = "bayesian"


SOURCE_COLORS = {Source.NO_POOLING: NO_POOLING_COLOR, Source.COMPLETE_POOLING: COMPLETE_POOLING_COLOR,
                 Source.FREQUENTIST: FREQ_COLOR, Source.BAYESIAN: BAYES_COLOR}

_P = ParamSpec("_P")


def styled(func: Callable[_P, Figure]) -> Callable[_P, Figure]:
    """Run a plotting function under the package style (``package_style``, through
    ``matplotlib.rc_context``: global rcParams are restored afterwards)."""

    @wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Figure:
        with mpl.rc_context(package_style()):
            return func(*args, **kwargs)

    return wrapper


def new_figure(height: float, width: float = FIGURE_WIDTH) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def panel_grid(n_panels: int, ncols: int, panel_height: float, extra_height: float,
                share: bool = True) -> tuple[Figure, np.ndarray, int]:
    """A figure of ``n_panels`` axes in rows of at most ``ncols``, unused cells of the last row removed;
    (figure, axes, the number of columns used)."""
    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig = new_figure(height=panel_height * nrows + extra_height)
    axes = fig.subplots(nrows, ncols, sharex=share, sharey=share, squeeze=False).ravel()
    for extra in axes[n_panels:]:
        fig.delaxes(extra)
    return fig, axes, ncols


def _engine(engine: str) -> EngineName | None:
    return EngineName(engine) if engine in EngineName._value2member_map_ else None


def engine_label(engine: str) -> str:
    """Plain-language name of an engine (``statsmodels`` -> ``frequentist (statsmodels)``)."""
    known = _engine(engine)
    return known.side_label if known is not None else engine


def engine_color(engine: str) -> str:
    """The colour of an engine: frequentist blue, Bayesian vermillion (another name: the first extra)."""
    known = _engine(engine)
    if known is None:
        return EXTRA_COLORS[0]
    return FREQ_COLOR if known.frequentist else BAYES_COLOR


def source_colors(sources: Sequence[str], kinds: Mapping[str, str]) -> dict[str, str]:
    """Each source's colour: fixed by its kind (a ``Source`` value) where ``kinds`` gives one, else
    the remaining Okabe-Ito colours in the order the sources come. Labels are never read."""
    colors: dict[str, str] = {}
    extra = 0
    for source in dict.fromkeys(sources):
        kind = kinds.get(source)
        if kind in Source._value2member_map_:
            colors[source] = SOURCE_COLORS[Source(kind)]
        else:
            colors[source] = EXTRA_COLORS[extra % len(EXTRA_COLORS)]
            extra += 1
    return colors


def source_kinds(*frames: pd.DataFrame | None) -> dict[str, str]:
    """Each source label's kind, from the frames' ``source`` and optional ``kind`` columns."""
    kinds: dict[str, str] = {}
    for frame in frames:
        if frame is not None and "kind" in frame and "source" in frame:
            kinds.update(zip(frame["source"].astype(str), frame["kind"].astype(str), strict=True))
    return kinds


def short_text(value: Any, limit: int = 40) -> str:
    """User text made safe for matplotlib: '$' would start mathtext; long names are cut."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _close(fig: Figure) -> None:
    """Release a figure: pyplot-managed figures are closed, plain ones are left to the GC."""
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)


# --------------------------------------------------------------------------- output helpers

_SVG_METADATA = {"Date": None, "Creator": None, "Type": None, "Format": None}


def figure_to_svg(fig: Figure, *, salt: str = "compare_kit", close: bool = True) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog), byte-for-byte reproducible.

    Text is drawn as paths (no fonts needed), element ids are hashed with a fixed
    ``salt`` instead of a random one, and the dated/creator metadata block is left out,
    so the same figure always gives the same string. The only URLs left are the SVG
    and XLink namespace declarations. Artists drawn with ``rasterized=True`` become one
    inline PNG at ``RASTER_DPI`` (the vector parts do not depend on the dpi). The figure
    is closed afterwards unless ``close=False``.
    """
    buffer = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": salt, "svg.fonttype": "path", "svg.image_inline": True}):
        fig.savefig(buffer, format="svg", metadata=_SVG_METADATA, dpi=RASTER_DPI)
    if close:
        _close(fig)
    text = buffer.getvalue()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def figure_to_png_base64(fig: Figure, *, dpi: float = 100, close: bool = True) -> str:
    """The figure as a base64-encoded PNG (for ``<img src="data:image/png;base64,...">``).

    The PNG carries no software/version text chunk and no date, so it is reproducible
    for a given matplotlib build. The figure is closed afterwards unless ``close=False``.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    if close:
        _close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- table helpers

def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {what} table lacks columns {missing}; it has {list(frame.columns)}")


def pick_one(frame: pd.DataFrame, column: str, wanted: str | None, what: str) -> pd.DataFrame:
    """Rows of one value of ``column``: ``wanted`` if given, else the only value."""
    values = list(dict.fromkeys(frame[column].astype(str)))
    if wanted is None:
        if len(values) <= 1:
            return frame
        raise ValueError(f"the {what} table holds several {column} values {values}; "
                         f"say which one with {column}=...")
    if wanted not in values:
        raise ValueError(f"{column} {wanted!r} is not in the {what} table; it has {values}")
    return frame[frame[column].astype(str) == wanted]


def evenly_spaced(values: Sequence[Any], limit: int) -> list[Any]:
    """At most ``limit`` items, evenly spaced (deterministic thinning)."""
    values = list(values)
    if len(values) <= limit:
        return values
    index = np.unique(np.linspace(0, len(values) - 1, limit).round().astype(int))
    return [values[i] for i in index]


def count_text(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def number_label(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:g}"
