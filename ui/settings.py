"""The experiment pages' settings: lab preset or quick look, Advanced hyper-parameters, a task's own settings
(noise level, factor), and the one line saying what the next run will use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import streamlit as st

from dip.core.errors import DIPError
from dip.core.presets import DEFAULT_PRESET, QUICK_SIDE, Preset, get_preset
from dip.core.registry import get_task
from dip.core.tasks import fits_network, prepared_shape
from ui import keys, state
from ui.inputs import Picked
from ui.service import config
from ui.service.runners import fits_per_job


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


def _quick_label(task: str) -> str:
    """The quick look's choice, saying only what it really changes for this task (its expected time is shown
    below the observation, measured)."""
    quick, lab = get_preset(f"quick-{task}"), get_preset(DEFAULT_PRESET[task])
    narrower = ", a narrower net" if max(quick.net.down) < max(lab.net.down) else ""
    return f"Quick look ({QUICK_SIDE} px{narrower})"


def form(
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
            "quick": _quick_label(task),
        }.get,
        on_change=_mode_changed,
        args=(task,),
        help="The lab preset reproduces the course's settings and takes a while on a CPU. A quick look shows "
        "the method working in a minute or two, at a lower resolution and quality.",
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
    # The quick look's own iteration count (what fits in a minute here) is the preset working, not a user's change.
    auto = st.session_state.get(keys.quick_iterations(task)) if name == f"quick-{task}" else None
    changed = _changes(base, preset, auto_iterations=auto)
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
        if current in working_sizes():
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


def working_sizes() -> list[int]:
    """The working sizes this server accepts (a larger one would be refused by its limits when queued)."""
    largest = state.limits().max_side
    return sorted(x for x in {*config.WORKING_SIZES, config.default_max_side()} if x <= largest)


def _fitting_sizes(p: Preset, picked: Optional[Picked]) -> list[int]:
    """The working sizes at which the picked image, prepared, is still big enough for the network (all of them
    while no image is picked, or for a low-resolution upload, whose output size is what counts)."""
    sizes = working_sizes()
    if picked is None or (picked.blind and get_task(p.task).output_scale(p) > 1):
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


def _changes(base: Preset, p: Preset, auto_iterations: Optional[int] = None) -> str:
    pairs = [
        ("iterations", auto_iterations or base.fit.iterations, p.fit.iterations),
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
