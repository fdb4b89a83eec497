"""Named configurations: the lab's three presets (the defaults) and the official notebooks' settings.

One table read by the command line and the app. A preset is data: network, input code, fit settings,
task parameters, image preparation, and where the numbers come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Optional

from dip.core.errors import ConfigError
from dip.core.fit import FitConfig
from dip.core.models import InputConfig, SkipNetConfig

STANDARD_NET = SkipNetConfig()  # get_net(32, 'skip', 128/128/4, 5 scales, bilinear, reflection)
IMPEDANCE_NET = SkipNetConfig(input_channels=3, channels_down=(8, 16, 32, 64, 128), channels_skip=(0, 0, 0, 4, 4))


@dataclass(frozen=True)
class Preset:
    """A complete experiment configuration.

    Parameters
    ----------
    name : str
        The key in ``PRESETS``.
    task : str
        The registered task it is for ("denoise", "sr", "inpaint", "impedance", "jpeg", ...).
    net : SkipNetConfig
        The network.
    input : InputConfig
        The input code z.
    fit : FitConfig
        The optimisation settings.
    description : str
        One line for listings.
    source : str
        Where the numbers come from (e.g. "denoising.ipynb (HEAD)").
    sigma_255 : float
        Noise standard deviation for denoising, in 0-255 units. Default 25.
    factor : int
        Super-resolution scale factor. Default 4.
    mask_kind : {"text", "bernoulli", "box", "file"}
        Inpainting mask (``dip.core.degrade.make_mask``), or "file": the mask that comes with the image.
        Default "text".
    keep_fraction : float
        For a "bernoulli" mask: the fraction in (0, 1] of known pixels. Default 0.5.
    crop_multiple : int
        The image is centre-cropped to a multiple of this (0: no crop). Default 32.
    pad_multiple : int
        Reflection-pads to a multiple of this instead (0: no padding). Default 0.
    grey : bool
        The image is used as one channel (the net then has one output channel). Default False.
    border_pad : int
        Reflection padding added around the image, px (barbara: 512 -> 514, as the notebook). Default 0.
    sample : str or None
        Paper image it was tuned on (file name in shared/paper_images). Default None.
    params : dict
        Settings of tasks registered later (e.g. ``{"quality": 10}`` for JPEG artefacts); the first four tasks keep
        the named fields above, which config.json files already hold. Default empty.
    """

    name: str
    task: str
    net: SkipNetConfig
    input: InputConfig
    fit: FitConfig
    description: str
    source: str
    sigma_255: float = 25.0
    factor: int = 4
    mask_kind: str = "text"
    keep_fraction: float = 0.5
    crop_multiple: int = 32
    pad_multiple: int = 0
    grey: bool = False
    border_pad: int = 0  # reflection padding added around the image (barbara: 512 -> 514, as the notebook)
    sample: Optional[str] = None  # paper image it was tuned on (file name in shared/paper_images)
    # Settings of tasks registered later (e.g. {"quality": 10} for JPEG artefacts); the first four tasks keep the
    # named fields above, which config.json files already hold.
    params: dict = field(default_factory=dict)

    @property
    def min_image_side(self) -> int:
        """Smallest side in px a prepared image may have: the network's minimum, rounded up to the crop multiple.

        The 5-level nets take 33 px, so a crop to a multiple of 32 must leave 64.
        """
        need, m = self.net.min_side, 0 if self.pad_multiple else self.crop_multiple
        return -(-need // m) * m if m else need

    def with_overrides(
        self,
        *,
        fit: Optional[dict] = None,
        net: Optional[dict] = None,
        input: Optional[dict] = None,
        params: Optional[dict] = None,
        **task,
    ) -> Preset:
        """Return a copy with some settings changed, e.g. ``p.with_overrides(fit={"iterations": 50}, sigma_255=50)``.

        Parameters
        ----------
        fit, net, input : dict, optional
            Fields of ``FitConfig``, ``SkipNetConfig`` and ``InputConfig`` to change.
        params : dict, optional
            Settings of a later task (``params``) to change; the others keep their values.
        **task
            Fields of the preset itself (``sigma_255``, ``factor``, ...), replacing the old values.

        Returns
        -------
        Preset
            The new preset; this one is unchanged.

        Raises
        ------
        ConfigError
            If a new fit or network setting is out of range.
        TypeError
            For a name that is not a field.
        """
        return replace(
            self,
            fit=replace(self.fit, **(fit or {})),
            net=replace(self.net, **(net or {})),
            input=replace(self.input, **(input or {})),
            params={**self.params, **(params or {})},
            **task,
        )


def _fit(**kw) -> FitConfig:
    return FitConfig(**kw)


_LAB = "the lab's hyper-parameter table (README: Lab presets)"
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "lab-impedance",
            "impedance",
            IMPEDANCE_NET,
            InputConfig(channels=3),
            _fit(iterations=2400, early_stop="none"),
            "Lab: fit image, image+noise, shuffled pixels and noise (paper Fig. 2)",
            _LAB,
        ),
        Preset(
            "lab-denoise",
            "denoise",
            STANDARD_NET,
            InputConfig(channels=32),
            _fit(iterations=1800, backtrack=True),
            "Lab: Gaussian denoising, sigma 25, 1800 iterations",
            _LAB,
            sample="F16_GT.png",
        ),
        Preset(
            "lab-sr",
            "sr",
            STANDARD_NET,
            InputConfig(channels=32),
            _fit(iterations=2000),
            "Lab: super-resolution x4 through the Lanczos-2 downsampler, 2000 iterations",
            _LAB,
            sample="zebra_GT.png",
        ),
        Preset(
            "lab-inpaint",
            "inpaint",
            STANDARD_NET,
            InputConfig(channels=32),
            _fit(iterations=3000, reg_noise_std=0.03, final_input="clean"),
            "Standard net for inpainting: text, box or Bernoulli masks, 3000 iterations",
            "standard get_net with the inpainting notebook's noise and final input",
            crop_multiple=32,
        ),
        Preset(
            "f16",
            "denoise",
            STANDARD_NET,
            InputConfig(channels=32),
            _fit(iterations=3000, backtrack=True),
            "Official denoising notebook, F16: 3000 iterations with EMA and backtracking",
            "denoising.ipynb (HEAD)",
            sample="F16_GT.png",
        ),
        Preset(
            "zebra-x4",
            "sr",
            STANDARD_NET,
            InputConfig(channels=32),
            _fit(iterations=2000, reg_noise_std=0.03),
            "Official super-resolution x4 (zebra), 2000 iterations, sigma_p 0.03",
            "super-resolution.ipynb (HEAD)",
            sample="zebra_GT.png",
        ),
        Preset(
            "zebra-x8",
            "sr",
            STANDARD_NET,
            InputConfig(channels=32),
            _fit(iterations=4000, reg_noise_std=0.05),
            "Official super-resolution x8 (zebra), 4000 iterations, sigma_p 0.05",
            "super-resolution.ipynb (HEAD)",
            factor=8,
            sample="zebra_GT.png",
        ),
        Preset(
            "kate",
            "inpaint",
            SkipNetConfig(channels_skip=128, upsample_mode="nearest"),
            InputConfig(channels=32),
            _fit(iterations=6001, reg_noise_std=0.03, final_input="clean", snapshot_every=50),
            "Official text inpainting (kate): skip 128, nearest upsampling, 6001 iterations",
            "inpainting.ipynb (HEAD)",
            mask_kind="file",
            crop_multiple=64,
            sample="kate.png",
        ),
        Preset(
            "library",
            "inpaint",
            SkipNetConfig(
                input_channels=1,
                channels_down=(16, 32, 64, 128, 128, 128),
                channels_skip=0,
                kernel_down=5,
                upsample_mode="nearest",
                need_1x1_up=False,
            ),
            InputConfig(channels=1),
            _fit(iterations=3001, reg_noise_std=0.0, final_input="clean", snapshot_every=50),
            "Official region inpainting (library): 6-level net without skips, 3001 iterations",
            "inpainting.ipynb (HEAD)",
            mask_kind="file",
            crop_multiple=64,
            sample="library.png",
        ),
        Preset(
            "vase",
            "inpaint",
            SkipNetConfig(input_channels=2, channels_skip=0, upsample_mode="nearest"),
            InputConfig(kind="meshgrid", channels=2),
            _fit(iterations=5001, reg_noise_std=0.03, final_input="clean", snapshot_every=50),
            "Official region inpainting (vase): meshgrid input, no skips, 5001 iterations",
            "inpainting.ipynb (HEAD)",
            mask_kind="file",
            crop_multiple=64,
            sample="vase.png",
        ),
        Preset(
            "barbara",
            "inpaint",
            SkipNetConfig(output_channels=1),
            InputConfig(channels=32),
            _fit(iterations=11000, lr=0.001, reg_noise_std=0.03, snapshot_every=50),
            "Official restoration from 50 % of the pixels (barbara, greyscale): 11000 iterations at LR 0.001",
            "restoration.ipynb (HEAD)",
            mask_kind="bernoulli",
            keep_fraction=0.5,
            crop_multiple=0,
            pad_multiple=0,
            grey=True,
            border_pad=1,
            sample="barbara.png",
        ),
    ]
}

QUICK_NET = SkipNetConfig(channels_down=(32,) * 5, channels_skip=4)  # a quarter of the lab width: ~1/14 the FLOPs
QUICK_SIDE = 128  # working size of a quick look, px
PRESETS.update(
    {
        p.name: p
        for p in [
            Preset(
                f"quick-{task}",
                task,
                net,
                InputConfig(channels=channels),
                fit,
                f"Quick look: {QUICK_SIDE} px, a narrower net and as many iterations as fit in about a minute here",
                "chosen so that a first run finishes in about a minute on a 2-core CPU (README: Quick look)",
            )
            for task, net, channels, fit in [
                # The fewest iterations that clearly restore a 128 px sample (2-core CPU, 2026-12-01): denoising's
                # moving average +3.1 dB (astronaut) to +6.9 dB (coffee) after 600; inpainting (text, chelsea)
                # +13.6 dB after 300; SR's moving average +0.4 dB over bicubic (chelsea) after 500-900.
                ("impedance", IMPEDANCE_NET, 3, _fit(iterations=200, early_stop="none")),
                ("denoise", QUICK_NET, 32, _fit(iterations=600, backtrack=True)),
                ("sr", QUICK_NET, 32, _fit(iterations=600)),
                ("inpaint", QUICK_NET, 32, _fit(iterations=300, reg_noise_std=0.03, final_input="clean")),
            ]
        ]
    }
)

DEFAULT_PRESET = {"impedance": "lab-impedance", "denoise": "lab-denoise", "sr": "lab-sr", "inpaint": "lab-inpaint"}


def get_preset(name: str, task: Optional[str] = None) -> Preset:
    """Look up a preset by name.

    Parameters
    ----------
    name : str
        A key of ``PRESETS`` (which also holds the presets of tasks registered in ``dip.core.registry``); "lab",
        "" or None mean ``task``'s lab preset.
    task : str, optional
        When given, the preset must be one of this task's.

    Returns
    -------
    Preset
        The registered preset.

    Raises
    ------
    ConfigError
        For an unknown name or a preset of another task, listing the valid names.
    """
    import dip.core.registry  # noqa: F401  (every task registers its presets on import)

    if name in (None, "", "lab") and task is not None:
        if task not in DEFAULT_PRESET:
            raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(DEFAULT_PRESET)}.")
        name = DEFAULT_PRESET[task]
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}.")
    preset = PRESETS[name]
    if task is not None and preset.task != task:
        valid = [p.name for p in PRESETS.values() if p.task == task]
        raise ConfigError(f"preset {name!r} is for the {preset.task} task; for {task} use one of {', '.join(valid)}.")
    return preset


def preset_from_dict(data: dict) -> Preset:
    """Rebuild a preset from its plain JSON data: the inverse of ``dip.core.runio.preset_as_dict``.

    Parameters
    ----------
    data : dict
        A config.json object; lists become tuples, keys that are not fields are ignored.

    Returns
    -------
    Preset
        The preset, its network, input and fit settings validated as when made in code.

    Raises
    ------
    ConfigError
        When the data is not a complete preset, or a setting is out of range.
    """

    def build(cls, values: dict):
        names = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names})

    try:
        return build(
            Preset,
            {
                **data,
                "net": build(SkipNetConfig, data["net"]),
                "input": build(InputConfig, data["input"]),
                "fit": build(FitConfig, data["fit"]),
            },
        )
    except (KeyError, TypeError) as err:
        raise ConfigError(f"not a complete preset record ({type(err).__name__}: {err}).") from None
