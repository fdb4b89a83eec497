"""`python -m dip` subcommands: each writes the documented files; bad input exits 2 with a clear message."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dip.cli.commands import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = str(ROOT / "sample_images" / "coffee.png")
RUN_FILES = {"result.png", "result_ema.png", "observed.png", "history.csv", "metrics.json", "config.json"}
METRIC_KEYS = {
    "task",
    "preset",
    "iterations",
    "parameters",
    "seconds",
    "device",
    "psnr_observed",
    "psnr_final",
    "psnr_ema",
    "psnr_best",
    "best_iteration",
}


def _check_run(out: Path, iters: int, task: str, with_truth: bool = True) -> dict:
    assert RUN_FILES <= {p.name for p in out.iterdir()}
    assert list((out / "snapshots").glob("*.png"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics) and metrics["task"] == task and metrics["iterations"] == iters
    assert (metrics["psnr_final"] is not None) == with_truth
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= iters and {"iteration", "loss", "psnr_observed"} <= set(rows[0])
    return metrics


@pytest.mark.parametrize(
    "args,task",
    [
        (["denoise", "--sigma", "50"], "denoise"),
        (["sr", "--factor", "4"], "sr"),
        (["sr", "--factor", "8"], "sr"),
        (["inpaint", "--mask-kind", "box"], "inpaint"),
        (["inpaint", "--mask-kind", "bernoulli", "--keep", "0.3"], "inpaint"),
    ],
)
def test_subcommands_write_every_file(tmp_path, args, task):
    out = tmp_path / "run"
    code = main([*args, "--image", SAMPLE, "--max-side", "96", "--iters", "3", "--out", str(out)])
    assert code == 0
    m = _check_run(out, 3, task)
    assert m["parameters"] == 2_217_831 and m["device"] == "cpu" and m["precision"] in ("fp32", "bf16")


def test_impedance_writes_every_file_and_per_target_losses(tmp_path):
    out = tmp_path / "imp"
    assert main(["impedance", "--image", SAMPLE, "--max-side", "96", "--iters", "3", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["parameters"] == 572_827
    assert set(metrics["targets"]) == {"image", "image + noise", "shuffled pixels", "noise"}
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * 3 and rows[0]["target"] == "image"
    assert RUN_FILES <= {p.name for p in out.iterdir()}


def test_blind_denoising_of_an_already_noisy_image(tmp_path):
    out = tmp_path / "blind"
    assert (
        main(["denoise", "--observed", "--image", SAMPLE, "--max-side", "96", "--iters", "2", "--out", str(out)]) == 0
    )
    m = _check_run(out, 2, "denoise", with_truth=False)
    assert m["psnr_observed"] is None and m["psnr_best"] is None


def test_blind_super_resolution_upscales_the_input(tmp_path):
    out = tmp_path / "blind_sr"
    assert main(["sr", "--observed", "--image", SAMPLE, "--max-side", "48", "--iters", "2", "--out", str(out)]) == 0
    lr = np.asarray(Image.open(out / "observed.png"))
    res = np.asarray(Image.open(out / "result.png"))
    assert res.shape[0] == lr.shape[0] and res.shape[0] % 4 == 0 and res.shape[0] >= 4 * 32


def test_inpainting_with_a_mask_file(tmp_path):
    mask = np.full((64, 96), 255, np.uint8)
    mask[20:40, 30:60] = 0
    Image.fromarray(mask).save(tmp_path / "mask.png")
    img = Image.open(SAMPLE).resize((96, 64))
    img.save(tmp_path / "img.png")
    out = tmp_path / "inp"
    assert (
        main(
            [
                "inpaint",
                "--image",
                str(tmp_path / "img.png"),
                "--mask",
                str(tmp_path / "mask.png"),
                "--iters",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "mask.png").exists()


def test_mask_of_the_wrong_size_is_a_clear_error(tmp_path, capsys):
    Image.new("L", (10, 10), 255).save(tmp_path / "mask.png")
    code = main(
        [
            "inpaint",
            "--image",
            SAMPLE,
            "--max-side",
            "96",
            "--mask",
            str(tmp_path / "mask.png"),
            "--iters",
            "2",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "mask is 10x10 px but the image is 96x64 px" in capsys.readouterr().err


def test_not_an_image_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    assert main(["denoise", "--image", str(bad), "--iters", "2", "--out", str(tmp_path / "o")]) == 2
    assert "is not an image PIL can read" in capsys.readouterr().err


def test_too_small_image_is_a_clear_error(tmp_path, capsys):
    Image.new("RGB", (20, 20), "gray").save(tmp_path / "tiny.png")
    assert main(["denoise", "--image", str(tmp_path / "tiny.png"), "--iters", "2", "--out", str(tmp_path / "o")]) == 2
    assert "image is 20x20 px" in capsys.readouterr().err


def test_unknown_preset_lists_the_valid_ones(tmp_path, capsys):
    assert main(["sr", "--image", SAMPLE, "--preset", "f16", "--out", str(tmp_path / "o")]) == 2
    assert "for sr use one of lab-sr, zebra-x4, zebra-x8" in capsys.readouterr().err


def test_python_dash_m_entry_point_shows_help():
    done = subprocess.run([sys.executable, "-m", "dip", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0
    for cmd in ("impedance", "denoise", "sr", "inpaint", "jpeg"):
        assert cmd in done.stdout


def test_an_interrupted_command_continues_from_its_checkpoint(tmp_path, monkeypatch, capsys):
    from dip.cli.progress import FitProgress

    args = [
        "denoise",
        "--image",
        SAMPLE,
        "--max-side",
        "96",
        "--iters",
        "6",
        "--snapshot-every",
        "1",
        "--checkpoint-every",
        "2",
    ]
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    step = FitProgress.step

    def dies_at_5(self, rec):
        if rec.iteration == 5:
            raise KeyboardInterrupt  # the user pressed Ctrl-C
        step(self, rec)

    out = tmp_path / "out"
    monkeypatch.setattr(FitProgress, "step", dies_at_5)
    with pytest.raises(KeyboardInterrupt):
        main(args + ["--out", str(out)])
    assert (out / "checkpoint.pt").is_file() and not (out / "metrics.json").exists()
    monkeypatch.setattr(FitProgress, "step", step)
    capsys.readouterr()
    assert main(args[:5] + ["--iters", "8"] + args[7:] + ["--out", str(out)]) == 2  # another run's checkpoint
    assert "was written by a different run" in capsys.readouterr().err
    assert main(args + ["--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert metrics["resumed_from"] == 4 and "resumed_from" not in whole
    assert metrics["psnr_final"] == whole["psnr_final"] and metrics["psnr_ema"] == whole["psnr_ema"]
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == [f"{i:05d}.png" for i in range(1, 7)]
    assert not (out / "checkpoint.pt").exists()


def test_an_interrupted_impedance_command_continues_from_its_checkpoints(tmp_path, monkeypatch):
    from dip.cli.progress import FitProgress

    args = [
        "impedance",
        "--image",
        SAMPLE,
        "--max-side",
        "96",
        "--iters",
        "4",
        "--snapshot-every",
        "1",
        "--checkpoint-every",
        "2",
    ]
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    step = FitProgress.step

    def dies_in_the_noise_fit(self, rec):
        if self.label == "noise" and rec.iteration == 3:
            raise KeyboardInterrupt
        step(self, rec)

    out = tmp_path / "out"
    monkeypatch.setattr(FitProgress, "step", dies_in_the_noise_fit)
    with pytest.raises(KeyboardInterrupt):
        main(args + ["--out", str(out)])
    assert len(list(out.glob("checkpoint-*.pt"))) == 4 and not (out / "metrics.json").exists()
    monkeypatch.setattr(FitProgress, "step", step)
    assert main(args + ["--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert {n: t.get("resumed_from") for n, t in metrics["targets"].items()} == {
        "image": 2,
        "image + noise": 2,
        "shuffled pixels": 2,
        "noise": 2,
    }
    for name, target in whole["targets"].items():
        assert metrics["targets"][name]["final_loss"] == target["final_loss"], name
    assert sorted(p.name for p in (out / "noise" / "snapshots").iterdir()) == [f"{i:05d}.png" for i in range(1, 5)]
    assert not list(out.glob("checkpoint-*.pt"))


@pytest.mark.parametrize("command", ["denoise", "reproduce"])
def test_a_negative_checkpoint_interval_is_refused_before_any_work(command, tmp_path, capsys):
    args = [command, "--out", str(tmp_path), "--checkpoint-every", "-5"]
    args += ["--image", SAMPLE] if command == "denoise" else ["--images", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert "--checkpoint-every: -5; use 0 (no checkpoints) or a number of iterations" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_jpeg_subcommand_compresses_at_the_chosen_quality_and_compares_with_deblocking(tmp_path):
    """The task added through the registry alone: its flag, its observation, its baselines, the usual run folder."""
    out = tmp_path / "jpeg"
    args = ["jpeg", "--image", SAMPLE, "--preset", "quick-jpeg", "--max-side", "96", "--iters", "3"]
    assert main([*args, "--quality", "5", "--snapshot-every", "1", "--out", str(out)]) == 0
    metrics = _check_run(out, 3, "jpeg")
    assert json.loads((out / "config.json").read_text())["params"] == {"quality": 5}
    baselines = json.loads((out / "baselines.json").read_text())["baselines"]
    assert [b["name"] for b in baselines] == ["tv", "bilateral"]
    # quality 5 degrades more than quality 50 of the same image
    assert main([*args, "--quality", "50", "--out", str(tmp_path / "q50")]) == 0
    q50 = json.loads((tmp_path / "q50" / "metrics.json").read_text())
    assert metrics["psnr_observed"] < q50["psnr_observed"] - 3


def test_jpeg_quality_out_of_range_is_refused_with_the_range(tmp_path, capsys):
    code = main(["jpeg", "--image", SAMPLE, "--quality", "0", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "use an integer from 1 (worst) to 95 (best)" in capsys.readouterr().err
