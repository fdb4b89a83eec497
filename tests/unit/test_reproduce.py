"""``python -m dip reproduce`` end to end on tiny generated images with a tiny network."""

import json

import numpy as np
import pytest
from PIL import Image

from dip.cli.commands import main
from dip.lab import reproduce
from dip.lab.report import report_zip

DOCUMENTED = {
    "task",
    "image",
    "preset",
    "factor",
    "iterations",
    "psnr_observed",
    "psnr_final",
    "psnr_ema",
    "psnr_best",
    "best_iteration",
    "psnr_blind",
    "blind_iteration",
    "baselines",
    "seconds",
    "device",
    "seed",
}


def _save(a: np.ndarray, path, mode="RGB"):
    Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8), mode).save(path)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    images, samples = root / "images", root / "samples"
    images.mkdir()
    samples.mkdir()
    yy, xx = np.mgrid[0:80, 0:80] / 80.0
    smooth = np.stack([xx, yy, 0.5 + 0.3 * np.sin(6 * xx * yy)], axis=2)
    _save(smooth, images / "F16_GT.png")
    _save(np.repeat((np.sin(40 * xx + 10 * yy) > 0)[..., None], 3, axis=2) * 0.8 + 0.1, images / "zebra_GT.png")
    _save(smooth[..., ::-1], images / "kate.png")
    mask = np.ones((80, 80))
    mask[20:24, 10:70] = 0
    _save(mask, images / "kate_mask.png", "L")
    _save(0.5 + 0.4 * np.sin(20 * xx) * np.cos(15 * yy), images / "barbara.png", "L")
    _save(smooth[:, ::-1], samples / "sample.png")
    return images, samples


@pytest.fixture
def tiny_net(monkeypatch):
    def shrink(preset):
        return preset.with_overrides(
            net={"channels_down": (8, 16, 16), "channels_up": None, "channels_skip": 4}, input={"channels": 4}
        )

    monkeypatch.setattr(reproduce, "adjust_preset", shrink)


def test_reproduce_writes_results_for_every_case(folders, tiny_net, tmp_path, capsys):
    images, samples = folders
    out = tmp_path / "out"
    rc = main(
        [
            "reproduce",
            "--images",
            str(images),
            "--out",
            str(out),
            "--iters-scale",
            "0.01",
            "--max-side",
            "64",
            "--paper-presets",
            "--only",
            "denoise,sr,inpaint,impedance,stopping",
            "--samples",
            str(samples),
            "--device",
            "cpu",
            "--checkpoint-every",
            "5",
        ]
    )
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    cases = {(c["preset_name"], c["image"]): c for c in results["cases"]}
    assert set(cases) == {
        ("lab-denoise", "F16_GT.png"),
        ("lab-sr", "zebra_GT.png"),
        ("lab-inpaint", "kate.png"),
        ("lab-impedance", "F16_GT.png"),
        ("f16", "F16_GT.png"),
        ("zebra-x4", "zebra_GT.png"),
        ("zebra-x8", "zebra_GT.png"),
        ("barbara", "barbara.png"),
        ("lab-denoise", "sample.png"),
    }
    for c in results["cases"]:
        assert DOCUMENTED <= set(c), c["preset_name"]
        assert c["seed"] == 0 and c["device"] == "cpu"
    f16 = cases["lab-denoise", "F16_GT.png"]
    assert f16["preset"] == "lab" and f16["task"] == "denoise" and f16["iterations"] == 18
    assert set(f16["baselines"]) >= {"nlm", "tv"}
    assert f16["psnr_final_border_excluded"] is not None and "nlm" in f16["baselines_border_excluded"]
    assert f16["blind_iteration"] is not None and f16["psnr_blind_emv"] is not None
    assert cases["zebra-x8", "zebra_GT.png"]["factor"] == 8 and cases["lab-sr", "zebra_GT.png"]["factor"] == 4
    assert set(cases["lab-sr", "zebra_GT.png"]["baselines"]) == {"nearest", "bicubic", "lanczos"}
    assert set(cases["barbara", "barbara.png"]["baselines"]) == {"biharmonic"}
    assert cases["barbara", "barbara.png"]["shape"] == [66, 66, 1]  # 64 px + the notebook's 1-px reflection pad
    kate = cases["lab-inpaint", "kate.png"]  # inpainting is also scored with the observed pixels put back
    assert kate["psnr_final_known_kept"] > kate["psnr_final"] and "psnr_final_known_kept" not in f16
    assert cases["lab-denoise", "sample.png"]["group"] == "stopping"
    imp = cases["lab-impedance", "F16_GT.png"]
    assert set(imp["relative_loss_at"]["24"]) == {"image", "image + noise", "shuffled pixels", "noise"}
    assert imp["fig2_order_holds"] == imp["fig2"]["mse"]["holds"]
    assert not list((out / "runs").glob("*/checkpoint*"))  # every case's checkpoints go once it is written
    assert imp["fig2_order_holds_relative"] == imp["fig2"]["relative"]["holds"]
    assert all(
        len(f["speed_order"]) == 4 and list(f["order_at"]) == ["1", "3", "10", "24"] for f in imp["fig2"].values()
    )
    for c in results["cases"]:
        for fig in c["figures"].values():
            assert (out / fig).is_file()
    md = (out / "results.md").read_text()
    for heading in (
        "## Goals",
        "## Denoising",
        "## Super-resolution",
        "## Inpainting",
        "## Noise impedance",
        "## Stopping without ground truth",
        "Reduced run",
        "Non-local means",
        "Fig. 2 ordering by MSE (",
        "Fig. 2 ordering by MSE / variance (",
        "| DIP final output, observed pixels kept |",
        "so the final output can score above the best",
    ):
        assert heading in md
    assert "reproduce --images" in results["command"] and results["machine"]["torch"]
    run = out / f16["folder"]
    assert (run / "baselines.json").is_file() and (run / "history.csv").is_file()
    assert report_zip(run)[:2] == b"PK"
    assert "wrote" in capsys.readouterr().out


def test_missing_images_and_bad_options_fail_before_any_fit(folders, tmp_path, capsys):
    images, _ = folders
    assert main(["reproduce", "--images", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "missing image files" in capsys.readouterr().err
    assert main(["reproduce", "--images", str(images), "--out", str(tmp_path / "o"), "--only", "denoise,deblur"]) == 2
    assert "unknown group" in capsys.readouterr().err
    assert main(["reproduce", "--images", str(images), "--out", str(tmp_path / "o"), "--iters-scale", "0"]) == 2
    assert "must be positive" in capsys.readouterr().err
    assert main(["reproduce", "--images", str(images), "--out", str(tmp_path / "o"), "--max-side", "16"]) == 2
    assert "use a larger value" in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.json").exists()


def test_scale_preset_scales_iterations_and_the_stopping_window():
    from dip.core.presets import get_preset

    p = reproduce.scale_preset(get_preset("lab-denoise"), 0.1, seed=3)
    assert (p.fit.iterations, p.fit.es_window, p.fit.es_patience, p.fit.snapshot_every, p.fit.seed) == (
        180,
        45,
        100,
        10,
        3,
    )
    assert reproduce.scale_preset(get_preset("lab-denoise"), 0.5, seed=0).fit.es_window == 100
    full = reproduce.scale_preset(get_preset("lab-denoise"), 1.0, seed=0)
    assert (full.fit.iterations, full.fit.es_window, full.fit.es_patience) == (1800, 100, 1000)


def test_invocations_into_one_folder_accumulate_cases_of_the_same_settings(folders, tiny_net, tmp_path):
    images, _ = folders
    out = tmp_path / "out"
    common = [
        "reproduce",
        "--images",
        str(images),
        "--out",
        str(out),
        "--iters-scale",
        "0.01",
        "--max-side",
        "64",
        "--device",
        "cpu",
    ]
    read = lambda: json.loads((out / "results.json").read_text())
    assert main(common + ["--only", "denoise"]) == 0
    first = read()["cases"][0]
    assert main(common + ["--only", "sr"]) == 0
    results = read()
    assert [(c["preset_name"], c["image"]) for c in results["cases"]] == [
        ("lab-denoise", "F16_GT.png"),
        ("lab-sr", "zebra_GT.png"),
    ]
    assert results["cases"][0] == first  # kept as it was
    assert [("--only denoise" in c["command"], "--only sr" in c["command"]) for c in results["invocations"]] == [
        (True, False),
        (False, True),
    ]
    md = (out / "results.md").read_text()
    assert "--only denoise" in md and "--only sr" in md and "## Denoising" in md and "## Super-resolution" in md
    # each command names its CPU: "auto" precision is bf16 only where the CPU has native bf16
    assert all("native bf16" in c["cpu"] and c["cpu"] in md for c in results["invocations"])

    assert main(common[:-4] + ["--iters-scale", "0.02", "--max-side", "64", "--device", "cpu", "--only", "sr"]) == 0
    results = read()  # other settings: the earlier cases are not comparable and are dropped
    assert [c["preset_name"] for c in results["cases"]] == ["lab-sr"] and len(results["invocations"]) == 1
    assert results["cases"][0]["precision"] in ("bf16", "fp32")  # "auto", resolved for this CPU

    assert (
        main(
            common[:-4]
            + [
                "--iters-scale",
                "0.02",
                "--max-side",
                "64",
                "--device",
                "cpu",
                "--only",
                "denoise",
                "--precision",
                "fp32",
            ]
        )
        == 0
    )
    results = read()  # a float32 counterpart does not mix with the default precision's cases
    assert [(c["preset_name"], c["precision"]) for c in results["cases"]] == [("lab-denoise", "fp32")]
    assert "precision fp32" in (out / "results.md").read_text()


def test_an_interrupted_case_continues_from_its_checkpoint(folders, tiny_net, tmp_path, monkeypatch):
    images, _ = folders
    args = [
        "reproduce",
        "--images",
        str(images),
        "--iters-scale",
        "0.01",
        "--max-side",
        "64",
        "--device",
        "cpu",
        "--only",
        "inpaint",
        "--checkpoint-every",
        "5",
    ]
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())["cases"][0]
    assert "resumed_from" not in whole
    assert not (tmp_path / "whole" / "runs" / "lab-inpaint-kate" / "checkpoint.pt").exists()

    class Killed(Exception):
        pass

    step = reproduce._Watcher.step

    def dies_at_12(self, rec):
        if rec.iteration == 12:
            raise Killed
        step(self, rec)

    out = tmp_path / "out"
    monkeypatch.setattr(reproduce._Watcher, "step", dies_at_12)
    with pytest.raises(Killed):
        main(args + ["--out", str(out)])
    assert (out / "runs" / "lab-inpaint-kate" / "checkpoint.pt").is_file() and not (out / "results.json").exists()
    monkeypatch.setattr(reproduce._Watcher, "step", step)
    assert main(args + ["--out", str(out)]) == 0  # the same command again
    case = json.loads((out / "results.json").read_text())["cases"][0]
    assert case["resumed_from"] == 10 and case["iterations"] == whole["iterations"] == 30
    for key in (
        "psnr_final",
        "psnr_ema",
        "psnr_best",
        "best_iteration",
        "psnr_blind",
        "blind_iteration",
        "psnr_blind_emv",
        "blind_iteration_emv",
    ):
        assert case[key] == whole[key], key
    assert not (out / "runs" / "lab-inpaint-kate" / "checkpoint.pt").exists()


def test_only_may_name_presets_instead_of_groups(folders):
    images, samples = folders
    slugs = lambda only, paper=False: [c.slug for c in reproduce.select_cases(only, paper, samples)]
    assert slugs(("barbara",)) == ["barbara-barbara"]  # a paper preset without --paper-presets
    assert slugs(("denoise", "barbara")) == ["lab-denoise-F16_GT", "barbara-barbara"]
    assert slugs(("denoise",), paper=True) == ["lab-denoise-F16_GT", "f16-F16_GT"]
    assert slugs(("lab-sr", "stopping")) == ["lab-sr-zebra_GT", "lab-denoise-sample"]
    # one case by its run folder, e.g. to finish a study without re-running its finished cases
    assert slugs(("lab-denoise-sample",)) == ["lab-denoise-sample"]
    assert slugs(("zebra-x8-zebra_GT",)) == ["zebra-x8-zebra_GT"]
    with pytest.raises(
        reproduce.ConfigError, match="unknown group.*or a preset: .*barbara.*or a case: .*lab-denoise-sample"
    ):
        reproduce.reproduce(images, folders[0].parent / "o", only=("barbra",), samples=samples)


def test_case_notes_explain_a_final_output_above_the_best_iterate():
    from dip.lab.reproduce_md import _case_notes

    above = {"final_input": "perturbed", "psnr_final": 27.46, "psnr_best": 27.38}
    below = {"final_input": "perturbed", "psnr_final": 30.22, "psnr_best": 30.24}
    assert any("after the last update" in n for n in _case_notes(above))
    assert not any("after the last update" in n for n in _case_notes(below))
    assert not any("after the last update" in n for n in _case_notes({**above, "final_input": "clean"}))


def test_stopping_table_tells_a_confirmed_pick_from_a_provisional_one():
    """A pick is confirmed when the patience ran out before the run ended; chelsea's early pick (942 of 1800,
    patience 1000) was not, a run stopped at its pick + patience was."""
    from dip.lab.reproduce_md import _goal_rows, _stopping_section

    base = {
        "group": "stopping",
        "preset_name": "lab-denoise",
        "task": "denoise",
        "psnr_best": 29.70,
        "best_iteration": 1608,
        "psnr_final": 29.57,
        "es_patience": 1000,
    }
    provisional = {
        **base,
        "image": "chelsea.png",
        "iterations": 1800,
        "psnr_blind": 29.02,
        "blind_iteration": 942,
        "psnr_blind_emv": 29.11,
        "blind_iteration_emv": 919,
    }
    stopped = {**base, "image": "stopped.png", "iterations": 1942, "psnr_blind": 29.60, "blind_iteration": 942}
    table = "\n".join(_stopping_section([provisional, stopped]))
    assert "| 29.02 (942) | 0.68 | no | 29.11 (919) | 0.59 | no |" in table
    assert "| 29.60 (942) | 0.10 | yes | – (None) | – | – |" in table
    worst = next(r for r in _goal_rows([provisional, stopped]) if r[0].startswith("blind stop"))
    assert worst[1:4] == ["0.68", "≤ 0.5", "no"] and worst[4].endswith("confirmed before the run ended: 1 of 3")
