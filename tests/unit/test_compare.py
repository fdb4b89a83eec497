"""`python -m dip compare`: two runs of one case side by side, iteration by iteration."""

from pathlib import Path

from dip.cli.commands import main
from dip.core.fit import StepRecord
from dip.core.runio import write_history
from dip.lab.compare import compare_histories, compare_runs, comparison_markdown

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = str(ROOT / "sample_images" / "coffee.png")


def _history(folder: Path, psnrs: list[float], offset: float = 0.0) -> Path:
    folder.mkdir(parents=True)
    write_history(
        [StepRecord(i + 1, 0.1, 20.0, p + offset, p + offset + 1) for i, p in enumerate(psnrs)], folder / "history.csv"
    )
    return folder


def test_differences_are_taken_at_common_iterations_and_the_last_one_is_always_shown(tmp_path):
    a = _history(tmp_path / "a", [10.0 + i for i in range(25)])
    b = _history(tmp_path / "b", [10.0 + i for i in range(17)], offset=0.05)  # a shorter run, 0.05 dB higher
    c = compare_runs(a, b, every=5)
    assert [r["iteration"] for r in c["rows"]] == [5, 10, 15, 17]
    assert c["last_common"] == 17 and c["common_iterations"] == 17
    assert abs(c["at_last"]["psnr_true"] - 0.05) < 1e-9 and abs(c["max_abs_difference"]["psnr_ema_true"] - 0.05) < 1e-9
    md = comparison_markdown(c)
    assert "| 17 | 26.00 | 26.05 | +0.05 |" in md and "A = a, B = b" in md


def test_runs_without_ground_truth_or_history_get_a_clear_message(tmp_path, capsys):
    blind = [{"iteration": 1, "loss": 0.1, "psnr_true": None}]
    try:
        compare_histories(blind, blind)
        raise AssertionError("expected an error")
    except Exception as err:
        assert "ground truth" in str(err)
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert "not a run folder (no history.csv)" in capsys.readouterr().err


def test_a_shorter_run_of_the_same_seed_follows_the_same_trajectory(tmp_path, capsys):
    """What makes comparing a shorter float32 run with a full bf16 run valid: the total length does not change
    the iterations both reached."""
    common = ["denoise", "--image", SAMPLE, "--max-side", "96", "--precision", "fp32", "--seed", "3"]
    assert main([*common, "--iters", "12", "--out", str(tmp_path / "long")]) == 0
    assert main([*common, "--iters", "7", "--out", str(tmp_path / "short")]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "long"), str(tmp_path / "short"), "--every", "3"]) == 0
    out = capsys.readouterr().out
    assert "long (fp32)" in out and "short (fp32)" in out
    c = compare_runs(tmp_path / "long", tmp_path / "short", every=3)
    assert c["last_common"] == 7 and c["max_abs_difference"]["psnr_true"] < 1e-6
