"""The matplotlib figures of the reports: sizes, what each one shows, and clear errors for empty input."""

import subprocess
import sys

import numpy as np
import pytest

from dip.lab.figures import (
    PANEL_SIZE,
    STRIP_LABEL_HEIGHT,
    history_curves,
    history_figure,
    line_figure,
    line_plot,
    pick_evenly,
    png_bytes,
    progress_strip,
)

XS = list(range(1, 51))


def _frame(colour, h=20, w=30):
    return np.broadcast_to(np.asarray(colour, np.float32), (h, w, 3)).copy()


def test_line_plot_has_exactly_the_size_asked_for():
    # 201 and 113 px are sizes where inches x DPI falls just under the whole pixel
    for size in ((640, 360), (201, 113), (571, 290)):
        assert line_plot({"a": (XS, XS)}, size=size).size == size


def test_a_strip_lays_its_snapshots_side_by_side_with_labels_underneath():
    red, blue = _frame((1, 0, 0)), _frame((0, 0, 1))
    one = progress_strip([("input", red)], height=40, gap=4)
    three = progress_strip([("input", red), ("it 10", blue), ("it 20", red)], height=40, gap=4)
    # 30x20 px frames scaled to 40 px high are 60 px wide; 4 px gaps around and between them
    assert one.size == (60 + 2 * 4, 40 + STRIP_LABEL_HEIGHT + 2 * 4)
    assert three.size == (3 * 60 + 4 * 4, one.height)
    px = np.asarray(three).astype(int)
    assert (px[4 + 20, 4 + 30] == (255, 0, 0)).all() and (px[4 + 20, 4 + 60 + 4 + 30] == (0, 0, 255)).all()
    labels = px[4 + 40 + 1 :, :, :]  # the band under the snapshots
    for left in (4, 4 + 64, 4 + 128):
        assert (labels[:, left : left + 60] < 128).all(axis=2).any(), left  # dark text under each snapshot


def test_a_strip_keeps_at_most_max_frames_evenly_spaced():
    frames = [(f"it {i}", _frame((i / 10, 0, 0))) for i in range(10)]
    assert progress_strip(frames, height=20, max_frames=4).width == progress_strip(frames[:4], height=20).width
    assert [label for label, _ in pick_evenly(frames, 4)] == ["it 0", "it 3", "it 6", "it 9"]


def test_empty_input_raises_a_clear_error():
    with pytest.raises(ValueError, match="progress_strip needs at least one"):
        progress_strip([])
    with pytest.raises(ValueError, match="history_curves needs at least one history row"):
        history_curves([])


def test_markers_in_range_are_drawn_and_others_left_out():
    series = {"loss": (XS, [1 / x for x in XS])}
    plain = np.asarray(line_plot(series, log_y=True))
    marked = np.asarray(line_plot(series, log_y=True, markers={"best": 25}))
    assert (plain != marked).any()
    fig = line_figure(series, log_y=True, markers={"best": 25, "blind": None, "later": 500})
    assert [t.get_text() for t in fig.axes[0].texts] == ["best"]
    ignored = np.asarray(line_plot(series, log_y=True, markers={"blind": None, "later": 500}))
    assert (ignored == plain).all()


def test_log_scale_leaves_out_what_it_cannot_show():
    ax = line_figure({"a": ([1, 2, 3, 4], [0.1, 0.0, float("nan"), 0.01])}, log_y=True).axes[0]
    assert ax.get_yscale() == "log" and ax.lines[0].get_xdata().tolist() == [1, 4]
    ax = line_figure({"a": ([1, 2], [None, -1.0])}, log_y=True).axes[0]
    assert not ax.lines and [t.get_text() for t in ax.texts] == ["no data"]


def test_a_loss_within_one_decade_gets_round_ticks():
    ax = history_figure([{"iteration": i, "loss": 0.1 / i**0.6} for i in XS]).axes[0]
    lo, hi = ax.get_ylim()
    assert [t for t in ax.get_yticks() if lo <= t <= hi] == pytest.approx([0.01, 0.02, 0.05, 0.1])


def test_history_curves_show_psnr_when_known_and_one_loss_per_impedance_target():
    rows = [{"iteration": i, "loss": 1 / i, "psnr_true": 20 + i / 10, "psnr_ema_true": None} for i in XS]
    fig = history_figure(rows, markers={"best": 30})
    loss, psnr = fig.axes
    assert loss.get_yscale() == "log" and psnr.get_title(loc="left") == "PSNR"
    assert [t.get_text() for t in psnr.get_legend().get_texts()] == ["output"]  # EMA has no values
    assert history_curves(rows).size == (2 * PANEL_SIZE[0], PANEL_SIZE[1])
    blind = [{"iteration": i, "loss": 1 / i, "psnr_true": None} for i in XS]
    assert history_curves(blind).size == PANEL_SIZE
    targets = [{"iteration": i, "loss": v / i, "target": t} for t, v in (("image", 1), ("noise", 4)) for i in XS]
    fig = history_figure(targets, title="impedance")
    assert len(fig.axes) == 1
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["image", "noise"]


def test_figures_are_pngs_and_need_no_pyplot():
    data = png_bytes(progress_strip([("a", _frame((0, 1, 0)))], height=10))
    assert data.startswith(b"\x89PNG")
    # pyplot's global state (current figure, GUI backend) is not for a threaded server
    code = (
        "import sys; from dip.lab.figures import history_curves; "
        "history_curves([{'iteration': 1, 'loss': 0.1}, {'iteration': 2, 'loss': 0.05}]); "
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
