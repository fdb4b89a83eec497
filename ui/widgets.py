"""Settings and run widgets shared by the experiment pages: preset + Advanced, time estimate, observation, Run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import numpy as np
import streamlit as st

from dip.core.baselines import estimate_sigma, sr_baselines
from dip.core.errors import DIPError
from dip.core.impedance import make_targets
from dip.core.presets import DEFAULT_PRESET, QUICK_SIDE, Preset, get_preset
from dip.core.registry import get_task
from dip.core.tasks import fits_network, make_problem, prepare_image, prepare_low_resolution, prepared_shape
from ui import keys, state
from ui.inputs import Picked
from ui.service import config
from ui.service.imaging import mask_overlay, preview
from ui.service.jobs import JobRefused
from ui.service.runners import TaskSpec, fits_per_job


@dataclass
class Settings:
    preset: Preset
    max_side: int


def preset_label(task: str) -> Callable[[str], str]:
    def label(name: str) -> str:
        if name == DEFAULT_PRESET[task]:
            return "Lab preset"
        return "Quick look" if name == f"quick-{task}" else f"{name} (official notebook)"

    return label


QUICK_SECONDS = 60  # what a quick look aims at, start-up and baselines included


def _mode_changed(task: str) -> None:
    """The Lab / Quick look choice selects the matching preset and working size (Advanced shows both)."""
    quick = st.session_state.get(keys.mode(task)) == "quick"
    st.session_state[keys.preset(task)] = f"quick-{task}" if quick else DEFAULT_PRESET[task]
    st.session_state[keys.max_side(task)] = QUICK_SIDE if quick else config.default_max_side()


def _quick_iterations(task: str, base: Preset, picked: Optional[Picked]) -> None:
    """Set the quick look's iterations to what fits in about a minute on this machine (measured), never fewer than
    the preset's own number (the fewest that clearly restore the image), unless the user has changed them since."""
    key, auto = keys.setting(task, base.name, "iterations"), keys.quick_iterations(task)
    if picked is None or st.session_state.get(key, st.session_state.get(auto)) != st.session_state.get(auto):
        return  # the user's own number stays
    side = st.session_state.get(keys.max_side(task), QUICK_SIDE)
    if not fits_network(*picked.image.shape[:2], base, max_side=side):
        return
    h, w = prepared_shape(*picked.image.shape[:2], base, max_side=side)
    fits = fits_per_job(task)
    est = state.estimate_run(base.with_overrides(fit={"iterations": 1}), (h, w, 3), fits=fits)
    if est is None:  # busy: keep the preset's own number
        return
    per_fit = (QUICK_SECONDS / est.correction - est.overhead) / fits
    iterations = int(max(base.fit.iterations, min(3000, per_fit / est.per_iteration)) // 10 * 10)
    st.session_state[key] = st.session_state[auto] = iterations


def settings(
    task: str, picked: Optional[Picked] = None, extra: Optional[Callable[[Preset], dict]] = None
) -> Optional[Settings]:
    """The lab preset, visibly named, by default; other presets and every hyper-parameter under "Advanced".

    ``extra(preset) -> dict`` draws the task's own widgets (noise level, factor) above the expander and returns
    their preset overrides. Widget keys include the preset name, so another preset shows its own values.
    """
    st.radio(
        "Run",
        ["lab", "quick"],
        horizontal=True,
        key=keys.mode(task),
        persist_state="session",
        format_func={
            "lab": "Lab preset (the defaults)",
            "quick": f"Quick look (about a minute: {QUICK_SIDE} px, a narrower net)",
        }.get,
        on_change=_mode_changed,
        args=(task,),
        help="The lab preset reproduces the course's settings and takes a while on a CPU. A quick look shows "
        "the method working in about a minute, at a lower resolution and quality.",
    )
    head, task_area = st.container(), st.container()
    with st.expander("Advanced: presets and hyper-parameters"):
        names = [p.name for p in get_task(task).presets()]
        name = st.selectbox(
            "Preset", names, format_func=preset_label(task), key=keys.preset(task), persist_state="session"
        )
        base = get_preset(name, task)
        st.caption(f"Source: {base.source}.")
        if name == f"quick-{task}":
            _quick_iterations(task, base, picked)
        fit, net, max_side = _advanced(task, base, picked)
    with task_area:
        task_overrides = extra(base) if extra else {}
    try:
        preset = base.with_overrides(fit=fit, net=net, **task_overrides)
    except DIPError as err:
        st.error(str(err))
        return None
    changed = _changes(base, preset)
    head.markdown(
        f"**Settings for the next run: {preset_label(task)(name)}** (`{name}`): "
        f"{uses(preset, max_side, blind=bool(picked and picked.blind))}."
        + (f"  \n:orange[Changed from the preset: {changed}.]" if changed else "")
    )
    return Settings(preset, max_side)


def uses(p: Preset, max_side: int, *, blind: bool = False) -> str:
    """The values a run of ``p`` will use, as one line (what the header promises is what the job gets)."""
    spec = get_task(p.task)
    task = spec.blind_note if blind and spec.blind_note else spec.describe(p)
    return (
        f"{task} · {p.fit.iterations:,} iterations · {max(p.net.down)} channels · LR {p.fit.lr:g} · "
        f"σ_p {p.fit.reg_noise_std:.4g} · working size {max_side} px"
    )


def _advanced(task: str, p: Preset, picked: Optional[Picked]) -> tuple[dict, dict, int]:
    k = lambda name: keys.setting(task, p.name, name)  # this preset's widget of that setting
    c1, c2, c3 = st.columns(3)
    fit = {
        # "min" when the quick look has already set the value: a default as well would be a Streamlit warning.
        "iterations": c1.number_input(
            "Iterations",
            1,
            100_000,
            "min" if k("iterations") in st.session_state else p.fit.iterations,
            key=k("iterations"),
            persist_state="session",
        ),
        "lr": c2.number_input(
            "Learning rate", 1e-5, 1.0, p.fit.lr, format="%.4f", step=0.001, key=k("lr"), persist_state="session"
        ),
        "reg_noise_std": c3.number_input(
            "σ_p (input noise)",
            0.0,
            1.0,
            float(p.fit.reg_noise_std),
            format="%.4f",
            step=0.005,
            key=k("sigma_p"),
            persist_state="session",
            help="Standard deviation of the noise added to the input code z at every iteration.",
        ),
        "seed": c1.number_input("Seed", 0, 2**31 - 1, p.fit.seed, key=k("seed"), persist_state="session"),
        "snapshot_every": c2.number_input(
            "Snapshot every (iterations)",
            1,
            100_000,
            p.fit.snapshot_every,
            key=k("snapshot_every"),
            persist_state="session",
        ),
    }
    if p.fit.early_stop != "none":
        fit["stop_at_blind"] = c2.toggle(
            "Stop at the best (no ground truth)",
            p.fit.stop_at_blind,
            key=k("stop_at_blind"),
            persist_state="session",
            help=f"End the run once the early-stopping detector's pick has not improved for "
            f"{p.fit.es_patience} iterations: it rarely improves after that, and the output only "
            "fits more noise.",
        )
    widest = max(p.net.down)
    channels = c3.number_input(
        "Channels (widest level)",
        1,
        512,
        widest,
        key=k("channels"),
        persist_state="session",
        help="Scales the channels of every level of the network.",
    )
    sizes = _fitting_sizes(p, picked)
    key, default = keys.max_side(task), config.default_max_side()
    current = st.session_state.get(key) or default
    if current not in sizes:  # this image is too wide for it: the nearest larger size that works
        st.session_state[key] = next((x for x in sizes if x >= current), sizes[-1])
        if current in _working_sizes():
            st.caption(
                f"Working size {st.session_state[key]} px: at {current} px this image would be narrower than "
                f"the {p.min_image_side} px the network needs."
            )
    max_side = c1.selectbox(
        "Working size (longer side, px)",
        sizes,
        key=key,
        persist_state="session",
        index=None if key in st.session_state else sizes.index(current),
        help="The image is downscaled to this size, then cropped to a multiple of 32. Only sizes "
        "at which this image still fits the network are offered.",
    )
    net = {} if channels == widest else _scaled_channels(p, channels / widest)
    return fit, net, max_side


def _working_sizes() -> list[int]:
    """The working sizes this server accepts (a larger one would be refused by its limits when queued)."""
    largest = state.limits().max_side
    return sorted(x for x in {*config.WORKING_SIZES, config.default_max_side()} if x <= largest)


def _fitting_sizes(p: Preset, picked: Optional[Picked]) -> list[int]:
    """The working sizes at which the picked image, prepared, is still big enough for the network (all of them
    while no image is picked, or for a low-resolution upload, whose output size is what counts)."""
    sizes = _working_sizes()
    if picked is None or (picked.blind and p.task == "sr"):
        return sizes
    h, w = picked.image.shape[:2]
    fits = [x for x in sizes if fits_network(h, w, p, max_side=x)]
    return fits or sizes  # none fits: prepared() then says why (the image itself is too small)


def _scaled_channels(p: Preset, factor: float) -> dict:
    scale = lambda chans: tuple(max(1, round(c * factor)) for c in chans)
    out = {"channels_down": scale(p.net.down)}
    if p.net.channels_up is not None:
        out["channels_up"] = scale(p.net.up)
    return out


def _changes(base: Preset, p: Preset) -> str:
    pairs = [
        ("iterations", base.fit.iterations, p.fit.iterations),
        ("learning rate", base.fit.lr, p.fit.lr),
        ("σ_p", base.fit.reg_noise_std, p.fit.reg_noise_std),
        ("seed", base.fit.seed, p.fit.seed),
        ("snapshot every", base.fit.snapshot_every, p.fit.snapshot_every),
        ("channels", max(base.net.down), max(p.net.down)),
        ("noise σ", base.sigma_255, p.sigma_255),
        ("factor", base.factor, p.factor),
    ]
    changes = [f"{n} {new:g}" for n, old, new in pairs if old != new]
    if p.fit.stop_at_blind != base.fit.stop_at_blind:
        changes.append("stop at the best (no ground truth) " + ("on" if p.fit.stop_at_blind else "off"))
    return ", ".join(changes)


def prepared(picked: Picked, s: Settings) -> Optional[np.ndarray]:
    """The picked image downscaled and cropped for the preset, or None after showing why it cannot be used."""
    low_resolution = picked.blind and s.preset.task == "sr"  # the result is factor times larger than the input
    try:
        p = s.preset  # only what the preparation reads is part of the key: a new noise level reuses the image
        geometry = (p.grey, p.border_pad, p.pad_multiple, p.crop_multiple, p.factor, p.net.min_side)
        return _prepared(picked.digest, geometry, s.max_side, low_resolution, picked.image, p)
    except DIPError as err:
        if low_resolution or not _offer_a_working_size(picked, s):
            st.error(str(err))
        return None


@st.cache_data(show_spinner=False, max_entries=16)
def _prepared(
    digest: str, geometry: tuple, max_side: int, low_resolution: bool, _image: np.ndarray, _preset: Preset
) -> np.ndarray:
    """Downscaled and cropped once per upload and size setting, not at every widget change (a 12 MP photo takes
    about half a second to resize)."""
    if low_resolution:
        return prepare_low_resolution(_image, _preset, max_side=max(1, max_side // _preset.factor))
    return prepare_image(_image, _preset, max_side=max_side)


def _offer_a_working_size(picked: Picked, s: Settings) -> bool:
    """When only the working size makes the image too small for the network, say so and offer the smallest
    working size that fits (a wide photo at 64 px is cropped to 64x32). False when no working size helps."""
    h0, w0 = picked.image.shape[:2]
    need = s.preset.min_image_side
    h, w = prepared_shape(h0, w0, s.preset, max_side=s.max_side)
    fits = [x for x in _working_sizes() if x > s.max_side and fits_network(h0, w0, s.preset, max_side=x)]
    if min(h, w) >= need or not fits:
        return False
    st.error(
        f"At a working size of {s.max_side} px this {w0}x{h0} px image becomes {w}x{h} px, smaller than the "
        f"{need}x{need} px this network needs. Choose a working size of at least {fits[0]} px."
    )
    st.button(
        f"Use {fits[0]} px",
        key=keys.use_size(s.preset.task, fits[0]),
        on_click=lambda: st.session_state.update({keys.max_side(s.preset.task): fits[0]}),
    )
    return True


def problem_for(
    picked: Picked, s: Settings, image: np.ndarray, mask: Optional[np.ndarray] = None, *, blind: bool = False
):
    """The Problem of this image; ``blind`` (or an already degraded upload): there is no ground truth."""
    try:
        return make_problem(s.preset, image, observed=picked.blind or blind, mask=mask, seed=s.preset.fit.seed)
    except DIPError as err:
        st.error(str(err))
        return None


def time_estimate(task: str, s: Settings, shape: tuple) -> Optional[state.Estimate]:
    """On a CPU: the expected run time (start-up, iterations, baselines, measured here), and a smaller working size
    if it is long. Returns the estimate, which the job keeps to compare with its real time."""
    dev, _ = state.device()
    if not dev.startswith("cpu"):
        return None
    h, w, c = shape
    est = state.estimate_run(s.preset, shape, fits=fits_per_job(task))
    if est is None:
        st.caption("The time estimate appears when the worker is idle (measuring now would slow the running job).")
        return None
    how = (
        f"{est.per_iteration:.2f} s per iteration at {w}x{h} px measured here, plus start-up"
        + (" and the classical baselines" if task != "impedance" else "")
        + (f", ×{est.correction:.2f} from how long the last runs here took" if est.correction != 1.0 else "")
    )
    busy = (
        " It waits for the job(s) ahead of it, and the machine is busy: expect it to take longer." if est.busy else ""
    )
    st.caption(f"Expected time on this CPU: ≈ {duration(est.total)} ({how}).{busy}")
    total, budget = est.total, config.cpu_budget_minutes() * 60
    side = max(h, w)
    smaller = [x for x in config.WORKING_SIZES if x < side and fits_network(h, w, s.preset, max_side=x)]
    if total <= budget or not smaller:
        return est
    estimate = lambda x: total * (x / side) ** 2.2  # time ~ pixels^1.1 ~ side^2.2
    within = [x for x in smaller if estimate(x) <= budget]
    offers = sorted({within[-1] if within else smaller[0], smaller[-1]}, reverse=True)
    st.caption("This will take a while on this CPU. A smaller working size is much faster:")
    for col, new in zip(st.columns(3), offers):
        col.button(
            f"Use {new} px (≈ {duration(estimate(new))})",
            key=keys.smaller_size(task, new),
            on_click=lambda n=new: st.session_state.update({keys.max_side(task): n}),
        )
    return est


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def show_images(items: list[tuple[str, Optional[np.ndarray]]]) -> None:
    """A row of captioned images (None entries are skipped)."""
    items = [(c, im) for c, im in items if im is not None]
    for col, (caption, im) in zip(st.columns(max(3, len(items))), items):  # >= 3 columns: small images stay small
        col.image(preview(im), caption=caption, width="stretch")


def run_button(task: str, make_spec: Callable[[], TaskSpec], info: dict) -> None:
    """Run: queue the job unless this session already has one (then say where it is)."""
    if not st.button("Run", type="primary", key=keys.run(task), icon=":material/play_arrow:"):
        return
    busy = state.session_active_job()
    if busy is not None:
        where = "running" if busy.position == 0 else f"queued with {busy.position} job(s) ahead of it"
        st.warning(
            f"You already have a {busy.task} job {where} ({busy.id}). Cancel it or wait until it "
            "finishes before starting another one.",
            icon=":material/hourglass_top:",
        )
        return
    spec = make_spec()
    try:
        job = state.get_registry().submit(
            spec, task=task, owner=state.owner(), total=spec.total, info={**info, "public": spec.public}
        )
    except JobRefused as err:
        st.warning(str(err))
        return
    state.set_job_id(task, job.id)
    st.query_params["job"] = job.id


# -- task-specific settings (passed to ``settings(extra=...)``) --
def noise_level(p: Preset) -> dict:
    sigma = st.slider(
        "Noise level σ (0-255 scale)",
        0,
        100,
        int(p.sigma_255),
        key=keys.setting(p.task, p.name, "sigma"),
        persist_state="session",
        help="Gaussian noise added to the clean image. Ignored for a noisy upload.",
    )
    return {"sigma_255": float(sigma)}


def sr_factor(p: Preset) -> dict:
    factor = st.radio(
        "Upscaling factor",
        [4, 8],
        index=[4, 8].index(p.factor) if p.factor in (4, 8) else 0,
        format_func=lambda f: f"×{f}",
        horizontal=True,
        key=keys.setting(p.task, p.name, "factor"),
        persist_state="session",
    )
    return {"factor": int(factor)}


# -- the observation and the Run button --
def observation(problem, *, source: str, preset: Preset) -> dict:
    """Show the degraded observation before running; returns the job's ``info`` (what panels show meanwhile)."""
    y, truth = problem.degraded, problem.x_true
    info = {
        "source": source,
        "preset": preset.name,
        "blind": truth is None,
        "psnr_degraded": problem.psnr_degraded,
        "images": {"observed": preview(y), "ground_truth": preview(truth)},
    }
    h, w = problem.shape[:2]
    st.subheader("Observation")
    if state.job_id(problem.task):  # a run is shown below: say which of the two this block belongs to
        st.caption(
            "For the next run, with the settings above. The run shown below used its own settings, listed "
            "with its results."
        )
    if problem.task == "sr":
        base = {b.name: b for b in sr_baselines(problem.y, preset.factor, problem.shape, x_true=truth)}
        info["images"].update({k: preview(base[k].image) for k in ("bicubic", "nearest")})
        info["baselines"] = [base[k].as_record() for k in ("bicubic", "nearest")]
        lh, lw = problem.y.shape[:2]
        show_images(
            [
                (f"Low-resolution input ({lw}x{lh} px)", problem.y),
                (f"Bicubic ×{preset.factor} · {_db(base['bicubic'].psnr)}", base["bicubic"].image),
                (f"Nearest ×{preset.factor} · {_db(base['nearest'].psnr)}", base["nearest"].image),
                ("Ground truth", truth),
            ]
        )
    elif problem.task == "inpaint":
        info["images"]["mask"] = preview(problem.mask)
        holes = 1 - problem.mask.mean()
        show_images(
            [
                (f"Observation ({holes:.0%} of pixels missing) · {_db(problem.psnr_degraded)}", y),
                ("Mask (holes in red)", mask_overlay(truth if truth is not None else y, problem.mask)),
                ("Ground truth", truth),
            ]
        )
    else:
        spec = get_task(problem.task)
        caption = (
            f"{spec.blind_label} (no ground truth)"
            if truth is None
            else f"{spec.observed_label} · {_db(problem.psnr_degraded)}"
        )
        show_images([(caption, y), ("Ground truth", truth)])
    st.caption(
        f"Working image: {w}x{h} px" + (" (blind: PSNR is measured against the observation)." if truth is None else ".")
    )
    return info


def downscaled_noise_note(picked: Picked, image: np.ndarray) -> None:
    """A noisy upload shrunk to the working size has lost part of its noise to the averaging: say how much, since
    the run then denoises an easier image than the photo (a phone photo at 256 px may show hardly any noise)."""
    full, small = picked.image, image
    if not picked.blind or max(full.shape[:2]) <= max(small.shape[:2]):
        return
    h, w = full.shape[:2]
    top, left = max(0, (h - 1024) // 2), max(0, (w - 1024) // 2)
    before = estimate_sigma(full[top : top + 1024, left : left + 1024]) * 255  # a centre crop keeps this quick
    after = estimate_sigma(small) * 255
    fh, fw = picked.full_size if all(picked.full_size) else (h, w)
    # A very large photo is decoded at most ui.service.config.DOWNSCALE_TO px: its own noise is measured at that scale.
    where = f"your {fw}x{fh} px photo" + (f" (measured at {w}x{h} px)" if (fh, fw) != (h, w) else "")
    if after >= 0.8 * before:  # downscaling took little of it: nothing worth a warning
        return
    st.caption(
        f"Estimated noise: σ ≈ {before:.1f} in {where}, σ ≈ {after:.1f} at the working size — "
        "downscaling averaged part of it out. To denoise at the photo's own scale, choose a larger working "
        "size (slower) or upload a crop."
    )


def _db(value: Optional[float]) -> str:
    return "no ground truth" if value is None else f"PSNR {value:.2f} dB"


def run_area(task: str, s: Settings, info: dict, *, problem=None, image: Optional[np.ndarray] = None) -> None:
    """Time estimate (CPU), then Run. The job gets the problem (or, for impedance, the prepared image)."""
    shape = problem.shape if problem is not None else image.shape
    est = time_estimate(task, s, shape)
    info = {**info, "summary": summary(task, s, shape, info.get("source", "?"), blind=info.get("blind", False))}
    if est is not None:  # kept by the job: its real time corrects the next estimates
        info.update(estimate_seconds=est.total, estimate_correction=est.correction)

    def make_spec() -> TaskSpec:
        # A bundled sample image is nobody's private photo: its runs may be shown to every visitor.
        public = st.session_state.get(keys.source(task)) == "sample"
        return TaskSpec(
            task,
            s.preset,
            config.runs_dir(),
            info.get("source", "?"),
            problem=problem,
            image=image,
            device=state.device()[0],
            public=public,
            checkpoint_every=config.checkpoint_every(),
        )

    run_button(task, make_spec, info)


def impedance_targets(image: np.ndarray, s: Settings, source: str) -> dict:
    """The four fitting targets as thumbnails; returns the job's ``info``."""
    targets = make_targets(image, sigma_255=s.preset.sigma_255, seed=s.preset.fit.seed)
    st.subheader("Targets")
    show_images([(name, im) for name, im in targets.items()])
    h, w = image.shape[:2]
    st.caption(
        f"Each target is fitted from scratch by the same network ({w}x{h} px, "
        f"{s.preset.fit.iterations} iterations each)."
    )
    return {
        "source": source,
        "preset": s.preset.name,
        "blind": False,
        "psnr_degraded": None,
        "images": {f"target:{name}": preview(im) for name, im in targets.items()},
    }


def summary(task: str, s: Settings, shape: tuple, source: str, *, blind: bool = False) -> str:
    """One line naming everything a run used, e.g. for a result shown after a reload."""
    p, (h, w) = s.preset, shape[:2]
    parts = [
        source + (" (blind)" if blind else ""),
        f"{w}x{h} px",
        f"{preset_label(task)(p.name)} ({p.name})",
        f"{p.fit.iterations} iterations",
        f"LR {p.fit.lr:g}",
        f"σ_p {p.fit.reg_noise_std:.4g}",
        f"{max(p.net.down)} channels",
        f"seed {p.fit.seed}",
    ]
    if task in ("denoise", "impedance") and not blind:
        parts.append(f"noise σ {p.sigma_255:g}")
    if task == "sr":
        parts.append(f"×{p.factor}")
    return " · ".join(parts)
