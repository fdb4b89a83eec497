"""ui.keys: the session-state and widget keys are the strings they always were (tests and kept widget values use
them). No Streamlit."""

from ui import keys


def test_the_key_strings_do_not_change():
    assert [keys.OWNER_SECRET, keys.OWNER_IN_COOKIE, keys.URL_CHECKED, keys.job("sr")] == [
        "owner.secret",
        "owner.in_cookie",
        "url_checked",
        "job.sr",
    ]
    t = "denoise"
    assert [keys.source(t), keys.sample(t), keys.upload(t), keys.kept(keys.upload(t))] == [
        "denoise.source",
        "denoise.sample",
        "denoise.upload",
        "denoise.upload.kept",
    ]
    assert [keys.downscaled(t), keys.downscale(t), keys.mode(t), keys.preset(t), keys.max_side(t)] == [
        "denoise.downscaled",
        "denoise.downscale",
        "denoise.mode",
        "denoise.preset",
        "denoise.max_side",
    ]
    assert [keys.quick_iterations(t), keys.setting(t, "lab-denoise", "lr"), keys.run(t)] == [
        "denoise.quick.auto",
        "denoise.lab-denoise.lr",
        "denoise.run",
    ]
    assert [keys.use_size(t, 128), keys.smaller_size(t, 256)] == ["denoise.fits.128", "denoise.smaller.256"]
    assert [keys.MASK_KIND, keys.KEEP_FRACTION, keys.BRUSH, keys.MASK_UPLOAD, keys.canvas("ab12")] == [
        "inpaint.mask_kind",
        "inpaint.keep",
        "inpaint.brush",
        "inpaint.mask_upload",
        "inpaint.canvas.ab12",
    ]
    j = "20260101-000000-denoise-abcdef"
    assert [keys.cancel(j), keys.share(j), keys.share_token(j), keys.shown(j, "final"), keys.wipe(j)] == [
        f"cancel.{j}",
        f"{j}.share",
        f"{j}.share.token",
        f"{j}.shown.final",
        f"{j}.wipe",
    ]
    assert [keys.follow(keys.snapshots(j)), keys.snapshot(keys.snapshots(j, "noise"))] == [
        f"{j}.follow",
        f"{j}.noise.snap",
    ]
    assert [keys.baselines(j), keys.loss_chart(j), keys.impedance_chart(j), keys.target(j)] == [
        f"{j}.baselines",
        f"{j}.loss",
        f"{j}.impedance",
        f"{j}.target",
    ]
    assert [keys.download(j, "result.png"), keys.download(j, "zip"), keys.RUNS_TABLE, keys.RUNS_PICK] == [
        f"{j}.dl.result.png",
        f"{j}.dl.zip",
        "runs.table",
        "runs.pick",
    ]
