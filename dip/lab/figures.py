"""PNG figures drawn with matplotlib: a progress strip of snapshots and the loss / PSNR curves of a fit.

Used by the reproduction report (``dip.lab.reproduce``) and the download bundle (``dip.lab.report``). The drawing
functions return PIL images, which callers save (``.save(path)``) or turn into bytes (``png_bytes``). Input images
are float32 (H, W, C) in [0, 1].

Figures are ``matplotlib.figure.Figure`` objects rendered by Agg (``savefig`` to PNG), never pyplot: pyplot keeps a
global current figure and may pick a GUI backend, neither of which a threaded server should share.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Optional

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter
from PIL import Image

from dip.core.images import to_pil

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"]
DPI = 100
"""Pixels per inch of the rendered figures: sizes are given in pixels and divided by this."""
PANEL_SIZE = (640, 360)
"""Width and height in pixels of one panel of ``history_curves`` (and the default of ``line_plot``)."""
STRIP_LABEL_HEIGHT = 18
"""Pixels under each snapshot of ``progress_strip`` for its label."""
MARKER_COLOUR = "#777777"


def png_bytes(image: Image.Image) -> bytes:
    """Encode a PIL image as PNG.

    Parameters
    ----------
    image : PIL.Image.Image
        For example a figure from this module.

    Returns
    -------
    bytes
        The PNG file's bytes.
    """
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def pick_evenly(items: Sequence, count: int) -> list:
    """Pick at most ``count`` items, evenly spaced, always keeping the first and the last.

    Parameters
    ----------
    items : sequence
        The items in order.
    count : int
        How many to keep at most.

    Returns
    -------
    list
        All of ``items`` when there are at most ``count``, else ``count`` of them (fewer when rounding repeats one).
    """
    if len(items) <= count:
        return list(items)
    idx = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in sorted(set(idx))]


def _figure(width: int, height: int, **kwargs) -> Figure:
    # Agg truncates inches x DPI to whole pixels (5.66 in x 100 can give 565 px): half a pixel more keeps the size.
    return Figure(figsize=((width + 0.5) / DPI, (height + 0.5) / DPI), dpi=DPI, facecolor="white", **kwargs)


def render(fig: Figure) -> Image.Image:
    """Render a matplotlib figure to an RGB PIL image at ``DPI``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure; its size in inches times ``DPI`` gives the image's size in pixels.

    Returns
    -------
    PIL.Image.Image
        An RGB image, fully loaded (it holds no open file).
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    buf.seek(0)
    with Image.open(buf) as im:
        return im.convert("RGB")


def progress_strip(
    frames: Sequence[tuple[str, np.ndarray]], *, height: int = 128, max_frames: int = 8, gap: int = 4
) -> Image.Image:
    """Draw snapshots side by side, each scaled to ``height`` px, with its label (e.g. "it 500") underneath.

    Parameters
    ----------
    frames : sequence of (str, ndarray)
        (label, image) pairs in order; at most ``max_frames`` evenly spaced ones (first and last kept) are drawn.
    height : int, optional
        Height in pixels of every snapshot; widths follow each image's aspect ratio.
    max_frames : int, optional
        Most snapshots drawn.
    gap : int, optional
        White pixels around and between the snapshots.

    Returns
    -------
    PIL.Image.Image
        ``height + STRIP_LABEL_HEIGHT + 2 * gap`` px high, as wide as the scaled snapshots and their gaps.

    Raises
    ------
    ValueError
        If ``frames`` is empty.
    """
    frames = pick_evenly(list(frames), max_frames)
    if not frames:
        raise ValueError("progress_strip needs at least one (label, image) snapshot; got none.")
    thumbs = []
    for label, x in frames:
        im = to_pil(x).convert("RGB")
        w = max(1, round(im.width * height / im.height))
        thumbs.append((label, np.asarray(im.resize((w, height), Image.Resampling.LANCZOS))))
    width = sum(t.shape[1] for _, t in thumbs) + gap * (len(thumbs) + 1)
    total_height = height + STRIP_LABEL_HEIGHT + 2 * gap
    fig = _figure(width, total_height)
    left = gap
    for label, t in thumbs:
        # figimage places the pixels as they are (no resampling), offsets counted from the bottom left
        fig.figimage(t, xo=left, yo=STRIP_LABEL_HEIGHT + gap, origin="upper")
        centre = (left + t.shape[1] / 2) / fig.bbox.width, (gap + STRIP_LABEL_HEIGHT / 2) / fig.bbox.height
        fig.text(*centre, label, ha="center", va="center", fontsize=9)
        left += t.shape[1] + gap
    return render(fig)


def _points(xs: Sequence[float], ys: Sequence[Optional[float]], log_y: bool) -> Optional[np.ndarray]:
    """(N, 2) array of the plottable (x, y) pairs: y missing, not finite or (log scale) not positive left out."""
    xy = [
        (float(x), float(y))
        for x, y in zip(xs, ys)
        if y is not None and math.isfinite(float(y)) and (not log_y or float(y) > 0)
    ]
    return np.array(xy) if xy else None


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values of a log axis from ``lo`` to ``hi``: decades (at most 8), or 1-2-5 steps (then finer).

    The finer steps serve when fewer than 3 decades lie in the range, as a DIP loss curve often spans one decade only.
    """
    a, b = math.log10(lo), math.log10(hi)
    for mantissas in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
        ticks = [
            m * 10.0**e
            for e in range(math.floor(a), math.ceil(b) + 1)
            for m in mantissas
            if a - 1e-9 <= math.log10(m * 10.0**e) <= b + 1e-9
        ]
        if len(ticks) >= 3:
            return ticks[:: math.ceil(len(ticks) / 8)] if len(mantissas) == 1 else ticks
    return ticks


def draw_lines(
    ax: Axes,
    series: dict[str, tuple[Sequence[float], Sequence[Optional[float]]]],
    *,
    title: str = "",
    xlabel: str = "iteration",
    ylabel: str = "",
    log_y: bool = False,
    markers: Optional[dict[str, Optional[float]]] = None,
) -> None:
    """Draw one line per series on ``ax``, with labelled vertical marker lines and a legend.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    series : dict
        Legend name -> (x values, y values); y values that are None, not finite or (``log_y``) not positive are
        left out. A series with one point is drawn as a dot. With nothing left to draw, the axes say "no data".
    title, xlabel, ylabel : str, optional
        Texts of the panel; " (log)" is added to ``ylabel`` when ``log_y``.
    log_y : bool, optional
        Log-scale y axis.
    markers : dict, optional
        Label -> x position of a vertical line (e.g. ``{"best": 1234, "WMV": 1100}``); None values and positions
        outside the plotted range are left out. Labels stack upwards from the bottom so close lines stay legible,
        and sit left of their line in the right fifth of the plot so they stay inside it.
    """
    if title:
        ax.set_title(title, loc="left", fontsize=10)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel + (" (log)" if log_y else ""))
    drawn = 0
    for name, (xs, ys) in series.items():
        xy = _points(xs, ys, log_y)
        if xy is None:
            continue
        style = {"color": COLOURS[drawn % len(COLOURS)], "label": name}
        if len(xy) > 1:
            ax.plot(xy[:, 0], xy[:, 1], linewidth=1.5, **style)
        else:
            ax.plot(xy[:, 0], xy[:, 1], "o", markersize=4, **style)
        drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if log_y:
        ax.set_yscale("log")
        ticks = _log_ticks(*ax.get_ylim())
        if len(ticks) >= 2:  # else a range too narrow for round values: matplotlib's own ticks
            ax.yaxis.set_major_locator(FixedLocator(ticks))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0)  # the x axis spans the iterations recorded, so end markers sit on the frame
    ax.grid(True, axis="y", color="#e6e6e6")
    ax.set_axisbelow(True)
    x0, x1 = ax.get_xlim()
    shown = [(name, float(x)) for name, x in (markers or {}).items() if x is not None and x0 <= x <= x1]
    for k, (name, x) in enumerate(shown):
        ax.axvline(x, color=MARKER_COLOUR, linewidth=1, linestyle="--", zorder=1.5)
        on_left = (x - x0) > 0.8 * (x1 - x0)
        ax.annotate(
            name,
            xy=(x, 0),
            xycoords=ax.get_xaxis_transform(),  # x in data, y in axes fractions: the bottom of the plot
            xytext=(-3 if on_left else 3, 3 + 12 * k),
            textcoords="offset points",
            ha="right" if on_left else "left",
            va="bottom",
            fontsize=8,
            color="#555555",
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"},
        )
    # "best": the corner or edge that hides the fewest plotted points
    ax.legend(loc="best", fontsize=8, framealpha=1, edgecolor="#cccccc")


def line_figure(
    series: dict[str, tuple[Sequence[float], Sequence[Optional[float]]]],
    *,
    title: str = "",
    xlabel: str = "iteration",
    ylabel: str = "",
    log_y: bool = False,
    markers: Optional[dict[str, Optional[float]]] = None,
    size: tuple[int, int] = PANEL_SIZE,
) -> Figure:
    """Make a line chart as a matplotlib figure (``line_plot`` renders it).

    Parameters
    ----------
    series, title, xlabel, ylabel, log_y, markers
        As for ``draw_lines``.
    size : (int, int), optional
        Width and height in pixels.

    Returns
    -------
    matplotlib.figure.Figure
        One axes, laid out to fit its labels.
    """
    fig = _figure(*size, layout="constrained")
    draw_lines(fig.add_subplot(), series, title=title, xlabel=xlabel, ylabel=ylabel, log_y=log_y, markers=markers)
    return fig


def line_plot(
    series: dict[str, tuple[Sequence[float], Sequence[Optional[float]]]],
    *,
    title: str = "",
    xlabel: str = "iteration",
    ylabel: str = "",
    log_y: bool = False,
    markers: Optional[dict[str, Optional[float]]] = None,
    size: tuple[int, int] = PANEL_SIZE,
) -> Image.Image:
    """Draw a line chart: one line per series, axes with ticks, labelled marker lines, a legend.

    Parameters
    ----------
    series : dict
        Legend name -> (x values, y values); see ``draw_lines``.
    title, xlabel, ylabel : str, optional
        Texts of the chart.
    log_y : bool, optional
        Log-scale y axis (non-positive values are left out).
    markers : dict, optional
        Label -> x position of a labelled vertical line, e.g. ``{"best": 1234, "blind": 1100}``.
    size : (int, int), optional
        Width and height in pixels.

    Returns
    -------
    PIL.Image.Image
        An RGB image of exactly ``size``.
    """
    return render(
        line_figure(series, title=title, xlabel=xlabel, ylabel=ylabel, log_y=log_y, markers=markers, size=size)
    )


def history_figure(
    rows: Sequence[dict], *, markers: Optional[dict[str, Optional[float]]] = None, title: str = ""
) -> Figure:
    """Make the loss and PSNR curves of a fit as a matplotlib figure (``history_curves`` renders it).

    Parameters
    ----------
    rows, markers, title
        As for ``history_curves``.

    Returns
    -------
    matplotlib.figure.Figure
        One ``PANEL_SIZE`` panel (loss) or two side by side (loss, PSNR).

    Raises
    ------
    ValueError
        If ``rows`` is empty.
    """
    if not rows:
        raise ValueError("history_curves needs at least one history row (iteration, loss, ...); got none.")
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(r.get("target") or "loss"), []).append(r)
    loss = {name: ([r["iteration"] for r in g], [r["loss"] for r in g]) for name, g in groups.items()}
    psnr = {}
    if rows[0].get("target") is None:  # noise impedance (one loss per target) has no ground truth to score
        psnr = {
            label: ([r["iteration"] for r in rows], [r.get(key) for r in rows])
            for key, label in (("psnr_true", "output"), ("psnr_ema_true", "EMA"), ("psnr_observed", "vs observation"))
        }
        psnr = {k: v for k, v in psnr.items() if any(y is not None for y in v[1])}
    width, height = PANEL_SIZE
    fig = _figure(width * (2 if psnr else 1), height, layout="constrained")
    axes = fig.subplots(1, 2 if psnr else 1, squeeze=False)[0]
    draw_lines(axes[0], loss, title=title or "loss", ylabel="MSE", log_y=True, markers=markers)
    if psnr:
        draw_lines(axes[1], psnr, title="PSNR", ylabel="dB", markers=markers)
    return fig


def history_curves(
    rows: Sequence[dict], *, markers: Optional[dict[str, Optional[float]]] = None, title: str = ""
) -> Image.Image:
    """Draw the loss (log scale) and, when ground truth was known, the PSNR of a fit against iteration.

    Parameters
    ----------
    rows : sequence of dict
        History rows (``dip.core.runio.read_history`` or StepRecord dicts): ``iteration``, ``loss`` and optionally
        ``psnr_true``, ``psnr_ema_true``, ``psnr_observed``. Rows with a ``target`` column (noise impedance) give
        one loss line per target and no PSNR panel.
    markers : dict, optional
        Label -> iteration of a labelled vertical line in each panel, e.g. the best and the blind-stop iterations.
    title : str, optional
        Title of the loss panel (default "loss").

    Returns
    -------
    PIL.Image.Image
        One ``PANEL_SIZE`` panel, or two side by side when a PSNR column has values.

    Raises
    ------
    ValueError
        If ``rows`` is empty.
    """
    return render(history_figure(rows, markers=markers, title=title))
