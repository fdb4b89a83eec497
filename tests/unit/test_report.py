"""Download bundle of a run folder, the baselines.json format and the figures."""

import csv
import io
import json
import zipfile

import numpy as np
import pytest
from conftest import small_image, tiny_preset
from PIL import Image

from dip.core.baselines import denoise_baselines
from dip.core.errors import DIPError
from dip.core.runio import preset_as_dict, read_baselines, read_run, write_baselines, write_run
from dip.core.tasks import make_problem, solve, summarize
from dip.lab.figures import history_curves, line_figure, line_plot, progress_strip, render
from dip.lab.report import markdown_table, report_zip


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    preset = tiny_preset("denoise", iterations=30).with_overrides(
        fit={"snapshot_every": 10, "es_window": 5, "es_patience": 50}
    )
    x = small_image(side=32)
    problem = make_problem(preset, x, seed=0)
    snaps = []
    result = solve(preset, problem, device="cpu", on_snapshot=snaps.append)
    folder = tmp_path_factory.mktemp("run")
    write_run(
        folder,
        metrics=summarize(preset, problem, result).to_dict(),
        config=preset_as_dict(preset),
        result=result,
        degraded=problem.degraded,
        x_true=problem.x_true,
        snapshots=snaps,
    )
    write_baselines(folder, denoise_baselines(problem.y, 25, x_true=x), border_psnr={"nlm": 12.5})
    return folder


def test_baselines_json_round_trip(run_folder):
    data = json.loads((run_folder / "baselines.json").read_text())
    assert data["version"] == 1
    first = data["baselines"][0]
    assert first["name"] == "nlm" and first["image"] == "baselines/nlm.png" and first["psnr_border_excluded"] == 12.5
    assert set(first) >= {"name", "label", "psnr", "seconds", "settings"}
    assert (run_folder / "baselines" / "nlm.png").is_file()
    assert read_baselines(run_folder) == data["baselines"]
    assert read_run(run_folder)["baselines"] == data["baselines"]


def test_write_baselines_accepts_plain_records(tmp_path):
    write_baselines(tmp_path, [{"name": "bicubic", "psnr": 23.1, "seconds": 0.01}])
    assert read_baselines(tmp_path) == [{"name": "bicubic", "psnr": 23.1, "seconds": 0.01}]
    assert read_baselines(tmp_path / "missing") == []


def test_report_zip_holds_what_the_lab_report_asks_for(run_folder):
    z = zipfile.ZipFile(io.BytesIO(report_zip(run_folder)))
    names = set(z.namelist())
    assert {
        "summary.md",
        "history.csv",
        "curves.png",
        "progress_strip.png",
        "result.png",
        "metrics.json",
        "config.json",
        "baselines.json",
        "baselines.csv",
        "baselines.md",
        "baselines/nlm.png",
    } <= names
    rows = list(csv.DictReader(io.StringIO(z.read("history.csv").decode())))
    assert [int(r["iteration"]) for r in rows] == list(range(1, 31))  # the loss of every iteration
    metrics = json.loads(z.read("metrics.json"))
    summary = z.read("summary.md").decode()
    assert f"{metrics['psnr_final']:.2f} dB" in summary
    assert "fit.lr: 0.01" in summary and "Non-local means" in summary
    # 30 iterations cannot exhaust a patience of 50: the summary calls the blind pick provisional
    assert metrics["blind_confirmed"] is False and "(ES-WMV), provisional" in summary
    assert json.loads(z.read("config.json"))["fit"]["iterations"] == 30
    strip = Image.open(io.BytesIO(z.read("progress_strip.png")))
    assert strip.width >= 3 * 128  # 3 snapshots (10, 20, 30) side by side, 128 px high
    assert "Deep Image Prior (final)" in z.read("baselines.md").decode()


def test_report_zip_without_baselines_or_snapshots(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"task": "denoise", "psnr_final": 25.0}))
    names = zipfile.ZipFile(io.BytesIO(report_zip(tmp_path))).namelist()
    assert names == ["summary.md", "metrics.json"]


def test_report_zip_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(DIPError, match="not a finished run folder"):
        report_zip(tmp_path)


def test_figures_draw_curves_and_strips():
    xs = list(range(1, 101))
    im = line_plot(
        {"a": (xs, [1 / x for x in xs]), "b": (xs, [0.5] * 100)}, log_y=True, title="t", markers={"best": 40}
    )
    assert im.size == (640, 360)
    pixels = np.asarray(im)
    assert (pixels != 255).any(axis=2).mean() > 0.02  # something was drawn
    curves = history_curves([{"iteration": i, "loss": 1 / i, "psnr_true": 20 + i / 10} for i in xs])
    assert curves.width > 640  # loss and PSNR panels
    strip = progress_strip(
        [(f"it {i}", np.full((20, 30, 3), i / 10, np.float32)) for i in range(10)], height=40, max_frames=4
    )
    assert strip.height == 40 + 18 + 8


def test_the_legend_goes_where_it_hides_no_curve_and_end_markers_stay_inside():
    xs = np.arange(1, 101)
    for rising in (True, False):
        ys = xs / 100 if rising else 1 - xs / 100
        fig = line_figure({"a diagonal line": (xs, ys)}, markers={"best": 99, "WMV": 100})
        render(fig)  # lays the figure out: the extents below are those of the PNG
        ax = fig.axes[0]
        # the line runs corner to corner; no part of it passes within 5 px of the legend
        dense = np.linspace(1, 100, 2000)
        line = ax.transData.transform(np.column_stack([dense, dense / 100 if rising else 1 - dense / 100]))
        legend = ax.get_legend().get_window_extent().padded(5)
        assert not legend.count_contains(line), legend
        # labels of markers at the right edge are drawn left of their lines, inside the plot
        plot = ax.get_window_extent()
        labels = {t.get_text(): t.get_window_extent() for t in ax.texts}
        assert set(labels) == {"best", "WMV"}
        for name, box in labels.items():
            assert plot.x0 <= box.x0 and box.x1 <= plot.x1 and plot.y0 <= box.y0 and box.y1 <= plot.y1, name


def test_markdown_table():
    assert markdown_table(["a", "b"], [[1.234, None]]) == "| a | b |\n|---|---|\n| 1.23 | – |\n"


def test_summary_of_an_impedance_run_lists_the_targets(tmp_path):
    metrics = {
        "task": "impedance",
        "preset": "lab-impedance",
        "psnr_final": 30.0,
        "targets": {
            "image": {"final_loss": 1.5e-4, "min_loss": 1.2e-4, "psnr_fit": 38.2, "iterations": 10},
            "noise": {"final_loss": 8.1e-2, "min_loss": 8.0e-2, "psnr_fit": 10.9, "iterations": 10},
        },
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    summary = zipfile.ZipFile(io.BytesIO(report_zip(tmp_path))).read("summary.md").decode()
    assert "| image | 1.500e-04 | 1.200e-04 | 38.20 | 10 |" in summary


def _summary(folder) -> str:
    return zipfile.ZipFile(io.BytesIO(report_zip(folder))).read("summary.md").decode()


def test_summary_of_a_denoising_run_lists_only_its_settings_and_the_iterations_run(run_folder):
    summary = _summary(run_folder)
    settings = summary.split("## Settings")[1].split("##")[0]
    assert "- task: Denoising" in settings and "- noise σ: 25 (0–255 scale)" in settings
    assert "- iterations: 30\n" in settings and "- working size: 32x32 px" in settings
    # no super-resolution factor, inpainting mask, or the preset's description of 1800 iterations
    for other in ("factor", "mask", "keep_fraction", "1800", "F16_GT", "description"):
        assert other not in summary, other
    assert "fit.iterations: 30\n" in summary  # the hyper-parameters' iterations: the ones run


def test_a_stopped_run_names_the_iterations_run_and_planned(tmp_path):
    config = {
        "task": "denoise",
        "name": "lab-denoise",
        "sigma_255": 0.0,
        "factor": 4,
        "mask_kind": "text",
        "fit": {"iterations": 1800, "lr": 0.01},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "metrics.json").write_text(
        json.dumps(
            {
                "task": "denoise",
                "preset": "lab-denoise",
                "iterations": 30,
                "psnr_observed": float("inf"),
                "psnr_final": 40.0,
            }
        )
    )
    summary = _summary(tmp_path)
    assert "- iterations: 30 of 1800 (stopped early)" in summary and "fit.iterations: 30 of 1800" in summary
    assert "- noise σ: 0 (no noise added)" in summary
    assert "inf" not in summary.lower().replace("infinite", "")  # σ = 0: the input is the ground truth
    assert "| degraded input | ∞ (identical to the ground truth) |" in summary
    assert "factor" not in summary and "mask" not in summary


def test_summary_of_super_resolution_names_its_factor_and_the_bicubic_input(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"task": "sr", "sigma_255": 25.0, "factor": 8, "mask_kind": "text", "fit": {"iterations": 5}})
    )
    (tmp_path / "metrics.json").write_text(json.dumps({"task": "sr", "iterations": 5, "psnr_observed": 21.5}))
    summary = _summary(tmp_path)
    assert "- upscaling factor: ×8" in summary and "| bicubic-upsampled input | 21.50 dB |" in summary
    assert "degraded input" not in summary and "σ" not in summary and "mask" not in summary


def test_summary_of_inpainting_names_the_mask_used(tmp_path):
    from dip.core.images import save_image

    config = {
        "task": "inpaint",
        "sigma_255": 25.0,
        "factor": 4,
        "mask_kind": "text",
        "keep_fraction": 0.5,
        "fit": {"iterations": 5},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    metrics = {"task": "inpaint", "iterations": 5, "job_id": "x", "mask": "draw", "kept_fraction": 0.8712}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    summary = _summary(tmp_path)
    assert "- mask: drawn mask\n- pixels kept: 87%" in summary and "σ" not in summary and "factor" not in summary

    # an app run from before the app recorded its mask: the preset's "text" says nothing; the mask file is measured
    mask = np.ones((10, 10, 1), np.float32)
    mask[:3] = 0
    save_image(mask, tmp_path / "mask.png")
    (tmp_path / "metrics.json").write_text(json.dumps({"task": "inpaint", "iterations": 5, "job_id": "x"}))
    assert "- mask: not recorded\n- pixels kept: 70%" in _summary(tmp_path)


def test_report_zip_of_an_impedance_run_holds_every_target_and_its_fit(tmp_path):
    from dip.core.images import save_image
    from dip.core.impedance import TARGETS, target_slug

    targets = {}
    for k, name in enumerate(TARGETS):
        sub = tmp_path / target_slug(name)
        save_image(np.full((8, 8, 3), k / 4, np.float32), sub / "result.png")
        save_image(np.full((8, 8, 3), 1 - k / 4, np.float32), sub / "target.png")
        targets[name] = {"final_loss": 0.01, "min_loss": 0.01, "psnr_fit": 30.0 - k, "iterations": 7}
    save_image(np.zeros((4, 4, 3), np.float32), tmp_path.parent / "secret.png")
    targets["../secret"] = {"iterations": 7}  # a name from the file must not lead out of the folder
    (tmp_path / "config.json").write_text(
        json.dumps(
            {"task": "impedance", "sigma_255": 25.0, "factor": 4, "mask_kind": "text", "fit": {"iterations": 2400}}
        )
    )
    (tmp_path / "metrics.json").write_text(json.dumps({"task": "impedance", "iterations": 2400, "targets": targets}))
    z = zipfile.ZipFile(io.BytesIO(report_zip(tmp_path)))
    slugs = ["image", "image_plus_noise", "shuffled_pixels", "noise"]
    assert {f"fit_{s}.png" for s in slugs} | {f"target_{s}.png" for s in slugs} <= set(z.namelist())
    assert not [n for n in z.namelist() if "secret" in n]
    for s in slugs:
        assert z.read(f"fit_{s}.png") == (tmp_path / s / "result.png").read_bytes()
        assert z.read(f"target_{s}.png") == (tmp_path / s / "target.png").read_bytes()
    summary = z.read("summary.md").decode()
    assert "| image + noise | 1.000e-02 | 1.000e-02 | 29.00 | 7 | fit_image_plus_noise.png |" in summary
    assert "- iterations: 7 per target (of 2400 planned)" in summary and "- noise σ of the noisy targets: 25" in summary
    assert "factor" not in summary and "mask" not in summary


def test_a_task_added_through_the_registry_lists_its_own_parameters():
    from dip.lab.report import task_settings

    assert task_settings({"task": "jpeg"}, {"task": "jpeg", "params": {"quality": 10}}) == [("quality", "10")]
    assert task_settings({"task": "jpeg"}, {"task": "jpeg", "params": {"quality": "ten"}}) == []  # damaged: left out
