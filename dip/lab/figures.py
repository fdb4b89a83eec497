"""Plain PNG figures drawn with PIL (no matplotlib or kaleido needed): a progress strip and line plots.

Used by the reproduction report and the download bundle. Images are float32 (H, W, C) in [0, 1].
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dip.core.images import to_pil

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"]


def _font(size: int = 12) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def png_bytes(image: Image.Image) -> bytes:
    """A PIL image as PNG bytes."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def pick_evenly(items: Sequence, count: int) -> list:
    """At most ``count`` items, evenly spaced, always keeping the first and the last."""
    if len(items) <= count:
        return list(items)
    idx = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in sorted(set(idx))]


def progress_strip(
    frames: Sequence[tuple[str, np.ndarray]], *, height: int = 128, max_frames: int = 8, gap: int = 4
) -> Image.Image:
    """Snapshots side by side, each scaled to ``height`` px with its label (e.g. "it 500") underneath.

    Parameters
    ----------
    frames : (label, image) pairs in order; at most ``max_frames`` evenly spaced ones are drawn.
    """
    frames = pick_evenly(list(frames), max_frames)
    if not frames:
        raise ValueError("progress_strip needs at least one snapshot.")
    font = _font(12)
    thumbs = []
    for label, x in frames:
        im = to_pil(x).convert("RGB")
        w = max(1, round(im.width * height / im.height))
        thumbs.append((label, im.resize((w, height), Image.Resampling.LANCZOS)))
    label_h = 18
    width = sum(t.width for _, t in thumbs) + gap * (len(thumbs) + 1)
    canvas = Image.new("RGB", (width, height + label_h + 2 * gap), "white")
    draw = ImageDraw.Draw(canvas)
    left = gap
    for label, t in thumbs:
        canvas.paste(t, (left, gap))
        tw = draw.textlength(label, font=font)
        draw.text((left + (t.width - tw) / 2, gap + height + 3), label, fill="black", font=font)
        left += t.width + gap
    return canvas


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:  # decades, or 1-2-5 steps when the range spans less than two decades
        for mantissas in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
            ticks = [
                m * 10.0**e
                for e in range(math.floor(lo), math.ceil(hi) + 1)
                for m in mantissas
                if lo - 1e-9 <= math.log10(m * 10.0**e) <= hi + 1e-9
            ]
            if len(ticks) >= 3:
                break
        return ticks
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-12) / 4))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (m * step) <= 6:
            step *= m
            break
    return [t * step for t in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-2:
        return f"{v:.0e}"
    return f"{v:g}"


def line_plot(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str = "",
    xlabel: str = "iteration",
    ylabel: str = "",
    log_y: bool = False,
    markers: Optional[dict[str, float]] = None,
    size: tuple[int, int] = (640, 360),
) -> Image.Image:
    """A simple line chart: one line per series (x values, y values), axes with ticks, a legend.

    ``log_y`` plots log10(y) (non-positive values are dropped); ``markers`` draws labelled vertical lines
    at x positions (e.g. {"best": 1234, "blind": 1100}).
    """
    w, h = size
    left, right, top, bottom = 64, 16, 28 if title else 12, 40
    pts = {}
    for name, (xs, ys) in series.items():
        xy = [
            (float(x), float(y))
            for x, y in zip(xs, ys)
            if y is not None and math.isfinite(float(y)) and (not log_y or float(y) > 0)
        ]
        if xy:
            pts[name] = [(x, math.log10(y) if log_y else y) for x, y in xy]
    canvas = Image.new("RGB", size, "white")
    draw, font = ImageDraw.Draw(canvas), _font(12)
    if title:
        draw.text((left, 6), title, fill="black", font=font)
    if not pts:
        draw.text((left, h // 2), "no data", fill="black", font=font)
        return canvas
    allx = [p[0] for v in pts.values() for p in v]
    ally = [p[1] for v in pts.values() for p in v]
    x0, x1 = min(allx), max(allx) if max(allx) > min(allx) else min(allx) + 1
    y0, y1 = min(ally), max(ally)
    pad = (y1 - y0) * 0.05 or 0.5
    y0, y1 = y0 - pad, y1 + pad

    def to_px(x, y):
        return (left + (x - x0) / (x1 - x0) * (w - left - right), top + (y1 - y) / (y1 - y0) * (h - top - bottom))

    draw.rectangle([left, top, w - right, h - bottom], outline="black")
    for t in _ticks(y0, y1, log_y):
        _, py = to_px(x0, math.log10(t) if log_y else t)
        draw.line([left - 4, py, left, py], fill="black")
        draw.line([left, py, w - right, py], fill="#e6e6e6")
        label = _fmt(t)
        draw.text((left - 6 - draw.textlength(label, font=font), py - 7), label, fill="black", font=font)
    for t in _ticks(x0, x1, False):
        px, _ = to_px(t, y0)
        draw.line([px, h - bottom, px, h - bottom + 4], fill="black")
        label = _fmt(t)
        draw.text((px - draw.textlength(label, font=font) / 2, h - bottom + 6), label, fill="black", font=font)
    draw.text(((w - draw.textlength(xlabel, font=font)) / 2, h - 16), xlabel, fill="black", font=font)
    if ylabel:
        draw.text((4, top - 14 if title else 0), ylabel + (" (log)" if log_y else ""), fill="black", font=font)
    shown = [(name, to_px(x, y0)[0]) for name, x in (markers or {}).items() if x is not None and x0 <= x <= x1]
    for _, px in shown:
        draw.line([px, top, px, h - bottom], fill="#999999", width=1)
    for k, xy in enumerate(pts.values()):
        colour = COLOURS[k % len(COLOURS)]
        if len(xy) > 1:
            draw.line([to_px(x, y) for x, y in xy], fill=colour, width=2)
        else:
            px, py = to_px(*xy[0])
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
    for k, (name, px) in enumerate(shown):  # labels on white, over the curves, stacked so close lines stay legible
        tw = draw.textlength(name, font=font)
        tx = px + 3 if px + 3 + tw <= w - right else px - 3 - tw  # near the right edge: left of the line
        ty = h - bottom - 16 - 14 * k
        draw.rectangle([tx - 1, ty + 1, tx + tw + 1, ty + 14], fill="white")
        draw.text((tx, ty), name, fill="#555555", font=font)
    _legend(
        draw, font, list(pts), [to_px(x, y) for xy in pts.values() for x, y in xy], (left, top, w - right, h - bottom)
    )
    return canvas


def _legend(
    draw: ImageDraw.ImageDraw,
    font,
    names: list[str],
    points: list[tuple[float, float]],
    frame: tuple[float, float, float, float],
) -> None:
    """The legend on a white box in the corner of ``frame`` that covers the fewest plotted points."""
    bw = 34 + max(draw.textlength(n, font=font) for n in names)
    bh = 6 + 16 * len(names)
    fl, ft, fr, fb = frame
    corners = [(fr - bw - 6, ft + 6), (fl + 6, ft + 6), (fr - bw - 6, fb - bh - 6), (fl + 6, fb - bh - 6)]

    def covered(corner):
        cx, cy = corner
        return sum(cx <= px <= cx + bw and cy <= py <= cy + bh for px, py in points)

    lx, ly = min(corners, key=covered)  # the first (top right) among equals
    draw.rectangle([lx, ly, lx + bw, ly + bh], fill="white", outline="#cccccc")
    for k, name in enumerate(names):
        y = ly + 4 + 16 * k
        draw.line([lx + 6, y + 7, lx + 24, y + 7], fill=COLOURS[k % len(COLOURS)], width=3)
        draw.text((lx + 30, y), name, fill="black", font=font)


def side_by_side(*images: Image.Image, gap: int = 8) -> Image.Image:
    """PIL images next to each other on a white background."""
    width = sum(i.width for i in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (width, max(i.height for i in images)), "white")
    left = 0
    for im in images:
        canvas.paste(im, (left, 0))
        left += im.width + gap
    return canvas


def history_curves(rows: Sequence[dict], *, markers: Optional[dict[str, float]] = None, title: str = "") -> Image.Image:
    """Loss (log scale) and, when ground truth was known, PSNR against iteration, from history rows
    (``dip.core.runio.read_history`` or StepRecord dicts). Rows with a ``target`` column give one line per target."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(r.get("target") or "loss"), []).append(r)
    loss = {name: ([r["iteration"] for r in g], [r["loss"] for r in g]) for name, g in groups.items()}
    left = line_plot(loss, title=title or "loss", ylabel="MSE", log_y=True, markers=markers)
    if "target" in (rows[0] if rows else {}) and rows[0].get("target") is not None:
        return left
    psnr = {
        label: ([r["iteration"] for r in rows], [r.get(key) for r in rows])
        for key, label in (("psnr_true", "output"), ("psnr_ema_true", "EMA"), ("psnr_observed", "vs observation"))
    }
    psnr = {k: v for k, v in psnr.items() if any(y is not None for y in v[1])}
    if not psnr:
        return left
    return side_by_side(left, line_plot(psnr, title="PSNR", ylabel="dB", markers=markers))
