"""The "skip" hourglass generator of Deep Image Prior and its configuration.

Structure (per level i, outermost first), following the official ``models/skip.py``:
``[concat(skip_i(x), up(deeper_i(x)))] -> BN -> conv_up -> BN -> act [-> 1x1 conv -> BN -> act]``,
where ``deeper_i`` is a stride-2 (or pooled) conv block followed by level i+1. A final 1x1 conv and a
sigmoid map to the output channels. Parameter counts equal the official ones (see tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dip.core.batchnorm import WideBatchNorm2d
from dip.core.errors import ConfigError
from dip.core.layers import Upsample2x, padded_conv

UPSAMPLE_MODES = ("bilinear", "nearest")
DOWNSAMPLE_MODES = ("stride", "avg")
PADDINGS = ("reflection", "zero")


def per_level(value: int | str | Sequence, levels: int, name: str) -> tuple:
    """Broadcast a scalar to ``levels`` entries, or check that a sequence has exactly that many.

    Parameters
    ----------
    value : int, str or sequence
        One value for every level, or one per level.
    levels : int
        Number of levels (entries of ``channels_down``).
    name : str
        Setting name used in the error message.

    Returns
    -------
    tuple
        ``levels`` entries.

    Raises
    ------
    ConfigError
        If a sequence does not have exactly ``levels`` entries.
    """
    if isinstance(value, (int, str)):
        return (value,) * levels
    value = tuple(value)
    if len(value) != levels:
        raise ConfigError(
            f"{name} has {len(value)} entries but channels_down has {levels} levels; "
            f"give one value per level or a single value for all."
        )
    return value


@dataclass(frozen=True)
class SkipNetConfig:
    """Hyper-parameters of the skip network; scalars apply to every level.

    Defaults are the official "standard" DIP net (``get_net(32, 'skip', 128/128/4, 5 scales)``).

    Parameters
    ----------
    input_channels : int
        Channels of the input code z, >= 1. Default 32.
    output_channels : int
        Channels of the output image, >= 1. Default 3.
    channels_down : tuple of int
        Channels of each level's down branch, outermost first; its length is the number of levels (>= 1).
        Default 128 on 5 levels.
    channels_up : tuple of int, int or None
        Channels of each level's up (merge) branch; None: same as ``channels_down``.
    channels_skip : tuple of int or int
        Channels of each level's skip branch; 0 drops that skip connection. Default 4.
    kernel_down, kernel_up : tuple of int or int
        Kernel sizes of the down and up convolutions. Default 3.
    kernel_skip : int
        Kernel size of the skip convolutions. Default 1.
    upsample_mode : tuple of str or str
        "bilinear" or "nearest", per level. Default "bilinear".
    downsample_mode : tuple of str or str
        "stride" (stride-2 conv) or "avg" (2x2 average pooling), per level. Default "stride".
    padding : {"reflection", "zero"}
        Padding of every convolution. Default "reflection".
    need_1x1_up : bool
        Add a 1x1 conv -> BN -> act after each merge. Default True.
    need_sigmoid : bool
        Map the output to (0, 1) with a sigmoid. Default True.
    bn_gamma_init : {"ones", "uniform"}
        Batch-norm weight init: "ones" (PyTorch >= 1.2) or "uniform" (PyTorch 0.4, the official env).

    Raises
    ------
    ConfigError
        If a per-level sequence has the wrong length, a mode or padding is not supported, or a channel count
        is < 1.
    """

    input_channels: int = 32
    output_channels: int = 3
    channels_down: tuple = (128,) * 5
    channels_up: tuple | int | None = None  # None: same as channels_down
    channels_skip: tuple | int = 4
    kernel_down: tuple | int = 3
    kernel_up: tuple | int = 3
    kernel_skip: int = 1
    upsample_mode: tuple | str = "bilinear"
    downsample_mode: tuple | str = "stride"
    padding: str = "reflection"
    need_1x1_up: bool = True
    need_sigmoid: bool = True
    bn_gamma_init: str = "ones"  # "ones" (PyTorch >= 1.2) or "uniform" (PyTorch 0.4, the official env)

    def __post_init__(self):
        """Validate the settings (raises ``ConfigError``)."""
        if len(tuple(self.channels_down)) < 1:
            raise ConfigError("channels_down needs at least one level.")
        for name in ("up", "skip", "k_down", "k_up", "up_mode", "down_mode"):
            getattr(self, name)  # validates lengths
        self._check_choice("upsample_mode", self.up_mode, UPSAMPLE_MODES)
        self._check_choice("downsample_mode", self.down_mode, DOWNSAMPLE_MODES)
        self._check_choice("padding", (self.padding,), PADDINGS)
        self._check_choice("bn_gamma_init", (self.bn_gamma_init,), ("ones", "uniform"))
        if self.input_channels < 1 or self.output_channels < 1:
            raise ConfigError("input_channels and output_channels must be at least 1.")

    # Per-level views: a scalar setting applies to every level; a sequence must have one entry per level.
    @property
    def down(self) -> tuple:
        """Channels of the down branch, per level."""
        return tuple(self.channels_down)

    @property
    def up(self) -> tuple:
        """Channels of the up branch, per level (``channels_down`` when ``channels_up`` is None)."""
        return per_level(self.down if self.channels_up is None else self.channels_up, self.levels, "channels_up")

    @property
    def skip(self) -> tuple:
        """Channels of the skip branch, per level."""
        return per_level(self.channels_skip, self.levels, "channels_skip")

    @property
    def k_down(self) -> tuple:
        """Kernel size of the down convolutions, per level."""
        return per_level(self.kernel_down, self.levels, "kernel_down")

    @property
    def k_up(self) -> tuple:
        """Kernel size of the up convolutions, per level."""
        return per_level(self.kernel_up, self.levels, "kernel_up")

    @property
    def up_mode(self) -> tuple:
        """Upsampling mode, per level."""
        return per_level(self.upsample_mode, self.levels, "upsample_mode")

    @property
    def down_mode(self) -> tuple:
        """Downsampling mode, per level."""
        return per_level(self.downsample_mode, self.levels, "downsample_mode")

    @staticmethod
    def _check_choice(name, values, allowed):
        for v in values:
            if v not in allowed:
                raise ConfigError(f"{name}={v!r} is not supported; choose one of {', '.join(allowed)}.")

    @property
    def levels(self) -> int:
        """Number of resolution levels (entries of ``channels_down``)."""
        return len(tuple(self.channels_down))

    @property
    def min_side(self) -> int:
        """Smallest input side the network accepts.

        Each level halves the size; the deepest feature map must keep at least 2 pixels per side for
        batch-norm statistics and more than the reflection padding of its kernel.
        """
        deepest = max(2, max(self.k_down) // 2 + 1)
        if "avg" in self.down_mode:  # pooling floors odd sizes, strided convs round them up
            return 2**self.levels * deepest
        return 2**self.levels * (deepest - 1) + 1


def _conv_bn_act(cin: int, cout: int, kernel: int, padding: str, stride: int = 1, split: int = 0) -> list[nn.Module]:
    conv = padded_conv(cin, cout, kernel, padding, stride, split)
    return [conv, WideBatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)]


def _center_crop_to(t: torch.Tensor, height: int, width: int) -> torch.Tensor:
    top, left = (t.shape[-2] - height) // 2, (t.shape[-1] - width) // 2
    return t[..., top : top + height, left : left + width]


class _Level(nn.Module):
    """One resolution level: optional skip branch, a deeper branch (down, inner levels, up), and a merge."""

    def __init__(self, cfg: SkipNetConfig, i: int, cin: int):
        super().__init__()
        down, up, skip = cfg.down[i], cfg.up[i], cfg.skip[i]
        kd, pad = cfg.k_down[i], cfg.padding
        self.upsample_mode = cfg.up_mode[i]
        self.upsample = Upsample2x(self.upsample_mode)
        self.skip = nn.Sequential(*_conv_bn_act(cin, skip, cfg.kernel_skip, pad)) if skip > 0 else None
        stride = 2 if cfg.down_mode[i] == "stride" else 1
        layers = _conv_bn_act(cin, down, kd, pad, stride)
        if stride == 1:
            layers.insert(1, nn.AvgPool2d(2, 2))
        self.down = nn.Sequential(*layers, *_conv_bn_act(down, down, kd, pad))
        self.inner = _Level(cfg, i + 1, down) if i + 1 < cfg.levels else None
        deeper_out = cfg.up[i + 1] if self.inner is not None else down
        merge_conv = _conv_bn_act(skip + deeper_out, up, cfg.k_up[i], pad, split=skip)
        merge = [WideBatchNorm2d(skip + deeper_out), *merge_conv]
        if cfg.need_1x1_up:
            merge += _conv_bn_act(up, up, 1, pad)
        self.merge = nn.Sequential(*merge)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deep = self.down(x)
        if self.inner is not None:
            deep = self.inner(deep)
        deep = self.upsample(deep)
        height, width = x.shape[-2:]
        if deep.shape[-2] < height or deep.shape[-1] < width:  # only after avg-pooling an odd size
            deep = F.interpolate(deep, size=(height, width), mode=self.upsample_mode)
        # Like the official Concat: centre-crop to the common size, so odd sizes keep their shape.
        deep = _center_crop_to(deep, height, width)
        if self.skip is not None:
            deep = torch.cat([self.skip(x), deep], dim=1)
        return self.merge(deep)


class SkipNet(nn.Module):
    """Hourglass generator ``f_theta``: (N, input_channels, H, W) -> (N, output_channels, H, W) in (0, 1).

    Parameters
    ----------
    cfg : SkipNetConfig
        The architecture; kept as ``config``.
    """

    def __init__(self, cfg: SkipNetConfig):
        super().__init__()
        self.config = cfg
        self.body = _Level(cfg, 0, cfg.input_channels)
        self.head = padded_conv(cfg.up[0], cfg.output_channels, 1, cfg.padding)
        if cfg.bn_gamma_init == "uniform":
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    nn.init.uniform_(m.weight)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map the input code to an image.

        Parameters
        ----------
        z : Tensor
            Input code (N, input_channels, H, W), each side at least ``config.min_side``.

        Returns
        -------
        Tensor
            (N, output_channels, H, W), in (0, 1) when ``need_sigmoid``.
        """
        out = self.head(self.body(z))
        return torch.sigmoid(out) if self.config.need_sigmoid else out


def count_parameters(net: nn.Module) -> int:
    """Count the trainable parameters of ``net`` (those with ``requires_grad``)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


@dataclass(frozen=True)
class InputConfig:
    """The fixed input code z.

    Parameters
    ----------
    kind : {"noise", "meshgrid"}
        ``"noise"`` is U(0, 1) * scale (official ``var=1/10``); ``"meshgrid"`` is the (x, y) coordinates in [0, 1]
        and needs 2 channels. Default "noise".
    channels : int
        Channels of z. Default 32.
    scale : float
        Scale of the noise. Default 0.1.
    extra : dict
        Free-form settings kept with the config; left out of comparisons and ``repr``.

    Raises
    ------
    ConfigError
        If ``kind`` is unknown, or a meshgrid does not have 2 channels.
    """

    kind: str = "noise"
    channels: int = 32
    scale: float = 0.1
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        """Validate the settings (raises ``ConfigError``)."""
        if self.kind not in ("noise", "meshgrid"):
            raise ConfigError(f"input kind {self.kind!r} is not supported; choose 'noise' or 'meshgrid'.")
        if self.kind == "meshgrid" and self.channels != 2:
            raise ConfigError(f"a meshgrid input has 2 channels, not {self.channels}.")


def make_input_code(
    cfg: InputConfig, height: int, width: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Build the input code z.

    Parameters
    ----------
    cfg : InputConfig
        Kind, channels and scale of z.
    height, width : int
        Size of z in px (the network's input size).
    generator : torch.Generator or None, optional
        Random generator of the noise (seed it for a reproducible z); None uses torch's global one.

    Returns
    -------
    Tensor
        float32 (1, channels, height, width) on the CPU: in [0, scale) for noise, [0, 1] for a meshgrid.
    """
    if cfg.kind == "meshgrid":
        xs = torch.linspace(0, 1, width).expand(height, width)
        ys = torch.linspace(0, 1, height)[:, None].expand(height, width)
        return torch.stack([xs, ys])[None].contiguous()
    return torch.rand(1, cfg.channels, height, width, generator=generator) * cfg.scale
