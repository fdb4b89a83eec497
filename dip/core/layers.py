"""Layers of the skip net that PyTorch's own ops run slowly on a CPU, rewritten without changing the maths.

Measured with ``python -m dip bench`` and the torch profiler (docs/benchmark.md), on a CPU in float32:

- a zero-width reflection padding (the official code pads 1x1 convolutions by 0) copies its input forwards and
  backwards: ``padded_conv`` puts an ``Identity`` in its place;
- the backward of a 2x bilinear upsampling takes 2-3x its forward: ``upsample2x`` computes it as the separable
  adjoint;
- the backward of a 1-pixel reflection padding likewise: ``ReflectionPad1`` computes it as the adjoint (the
  inner block plus the eight mirrored border strips);
- oneDNN's input gradient for 132 input channels (a skip branch's 4 next to 128) runs ~30 % slower than for
  the two groups apart: ``SplitGradConv2d``;
- oneDNN takes ~3x a matrix product for a 1x1 convolution with a handful of channels: ``ThinPointwiseConv2d``.

Forward outputs are bit-identical to ``torch.nn``'s (the matrix product's equal to float32 rounding), gradients
equal to float32 rounding; state-dict keys and parameter counts are unchanged. Under CPU autocast (bf16 / fp16):

- a 1-pixel reflection padding runs in the activation's own precision, where autocast would pad in float32 and
  the next convolution cast back (the same values, without two casts each way);
- the bilinear upsampling's gradient, a channel slice of the concatenation's, is made dense before PyTorch's
  kernel, which is ~5x slower on a strided one (the same values);
- in bf16, a convolution over a large map sums its weight gradient over row bands (``BandedGradConv2d``):
  oneDNN is 1.3-2.6x faster on a band that stays in the cache (within bf16 rounding of autocast's gradient).

Otherwise on CUDA, under autocast and in NHWC the ``torch.nn`` path runs. Batch norm over few NHWC channels is
``dip.core.batchnorm``'s. ``as_plain_pytorch`` builds the ``torch.nn`` twin of a net for comparisons.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from dip.core.batchnorm import WideBatchNorm2d


def bilinear_upsample2x_adjoint(grad: torch.Tensor) -> torch.Tensor:
    """Gradient of a 2x bilinear upsampling (``align_corners=False``) with respect to its input.

    The upsampling writes, along each axis, ``out[2i] = 0.25 x[i-1] + 0.75 x[i]`` and
    ``out[2i+1] = 0.75 x[i] + 0.25 x[i+1]``, with ``x[-1] = x[0]`` and ``x[n] = x[n-1]`` (the edges clamp). Its
    adjoint gathers, per axis, the even and odd outputs with the same weights: four strided views and
    in-place additions, where PyTorch's ``upsample_bilinear2d_backward`` scatters per output pixel.

    Parameters
    ----------
    grad : Tensor
        Gradient of the upsampled output, (..., 2H, 2W), floating point.

    Returns
    -------
    Tensor
        Gradient of the input, (..., H, W), the dtype of ``grad``.
    """
    return _adjoint_along(_adjoint_along(grad, -1), -2)


def _adjoint_along(grad: torch.Tensor, dim: int) -> torch.Tensor:
    step2 = [slice(None)] * grad.dim()
    step2[dim] = slice(0, None, 2)
    even = grad[tuple(step2)]
    step2[dim] = slice(1, None, 2)
    odd = grad[tuple(step2)]
    n = even.shape[dim]
    out = torch.add(even, odd).mul_(0.75)
    # out[2i+2] reaches x[i] with weight 0.25 (for i < n-1), out[2i-1] likewise (for i > 0) ...
    out.narrow(dim, 0, n - 1).add_(even.narrow(dim, 1, n - 1), alpha=0.25)
    out.narrow(dim, 1, n - 1).add_(odd.narrow(dim, 0, n - 1), alpha=0.25)
    # ... and the clamped edges send the rest of out[0] and out[2n-1] to x[0] and x[n-1].
    out.narrow(dim, 0, 1).add_(even.narrow(dim, 0, 1), alpha=0.25)
    out.narrow(dim, n - 1, 1).add_(odd.narrow(dim, n - 1, 1), alpha=0.25)
    return out


class _BilinearUpsample2x(torch.autograd.Function):  # PyTorch's forward, the adjoint above as backward
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear")

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return bilinear_upsample2x_adjoint(grad)


class _BilinearUpsample2xDenseGrad(torch.autograd.Function):  # PyTorch's forward and backward, on a dense grad
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.input_size = list(x.shape)
        ctx.memory_format = torch.channels_last if _is_nhwc(x) else torch.contiguous_format
        return F.interpolate(x, scale_factor=2, mode="bilinear")

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        # The gradient arrives as a channel slice of the concatenation's; PyTorch's CPU kernel copies a strided one
        # twice (287 ms for 128 channels, 256 -> 512), where one copy into the input's layout and the kernel take 64.
        grad = grad.contiguous(memory_format=ctx.memory_format)
        return torch.ops.aten.upsample_bilinear2d_backward(grad, list(grad.shape[-2:]), ctx.input_size, False, 2.0, 2.0)


def _is_nhwc(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def upsample2x(x: torch.Tensor, mode: str) -> torch.Tensor:
    """Upsample (N, C, H, W) by 2 like ``F.interpolate(x, scale_factor=2, mode=mode)``.

    On a CPU in float32, bilinear upsampling keeps PyTorch's forward but takes its gradient from
    ``bilinear_upsample2x_adjoint``; on a CPU in bf16 / fp16 it is PyTorch's own gradient, of the incoming
    gradient made dense first (a channel slice of the concatenation's, which PyTorch's kernel handles ~5x
    slower); elsewhere (CUDA, "nearest") it is ``F.interpolate`` itself.

    Parameters
    ----------
    x : Tensor
        (N, C, H, W) feature map.
    mode : {"bilinear", "nearest"}
        Interpolation, as in ``F.interpolate``.

    Returns
    -------
    Tensor
        (N, C, 2H, 2W).
    """
    if mode == "bilinear" and x.device.type == "cpu":
        if x.dtype == torch.float32:
            return _BilinearUpsample2x.apply(x)
        return _BilinearUpsample2xDenseGrad.apply(x)
    return F.interpolate(x, scale_factor=2, mode=mode)


class Upsample2x(nn.Module):
    """``upsample2x`` as a module (no parameters), so that ``as_plain_pytorch`` can swap it for ``nn.Upsample``.

    Parameters
    ----------
    mode : {"bilinear", "nearest"}
        Interpolation.
    """

    def __init__(self, mode: str):
        """Keep the mode; see the class docstring."""
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample (N, C, H, W) to (N, C, 2H, 2W)."""
        return upsample2x(x, self.mode)


def _cpu_float32_nchw(x: torch.Tensor) -> bool:
    """Where the rewritten padding and convolutions run: float32 NCHW on a CPU outside autocast."""
    on_cpu = x.device.type == "cpu" and not torch.is_autocast_enabled("cpu")
    return on_cpu and x.dtype == torch.float32 and x.is_contiguous()


def reflection_pad1_adjoint(grad: torch.Tensor) -> torch.Tensor:
    """Gradient of a 1-pixel reflection padding (``F.pad(x, (1, 1, 1, 1), mode="reflect")``) for its input.

    The padding copies row 1 above row 0, row H-2 below row H-1, and likewise the columns (the corners take
    x[1, 1], x[1, W-2], ...). Its adjoint is the padded gradient's inner block with each border strip and
    corner added back onto the row, column or pixel it copied: one copy and eight small in-place additions,
    where PyTorch's ``reflection_pad2d_backward`` scatters per pixel.

    Parameters
    ----------
    grad : Tensor
        Gradient of the padded output, (..., H+2, W+2), H and W at least 2, floating point.

    Returns
    -------
    Tensor
        Gradient of the input, (..., H, W), the dtype of ``grad``.
    """
    out = grad[..., 1:-1, 1:-1].clone()
    out[..., 1, :] += grad[..., 0, 1:-1]
    out[..., -2, :] += grad[..., -1, 1:-1]
    out[..., :, 1] += grad[..., 1:-1, 0]
    out[..., :, -2] += grad[..., 1:-1, -1]
    out[..., 1, 1] += grad[..., 0, 0]
    out[..., 1, -2] += grad[..., 0, -1]
    out[..., -2, 1] += grad[..., -1, 0]
    out[..., -2, -2] += grad[..., -1, -1]
    return out


def reflection_pad1_adjoint_low(grad: torch.Tensor) -> torch.Tensor:
    """``reflection_pad1_adjoint`` of a bfloat16 / float16 gradient, with the sums that float32 makes.

    Under autocast PyTorch pads in float32 (its autocast list), so the gradient's border pixels are float32 sums
    rounded once. Here each border pixel of an edge takes one addition, rounded once as well, and the four pixels
    that take three (next to the corners) are summed in float32 and rounded once: the same values without casting
    the whole gradient. Images under 4 px on a side go through float32.

    Parameters
    ----------
    grad : Tensor
        Gradient of the padded output, (..., H+2, W+2), H and W at least 2, bfloat16 or float16.

    Returns
    -------
    Tensor
        Gradient of the input, (..., H, W), the dtype of ``grad``.
    """
    if min(grad.shape[-2:]) < 6:
        return reflection_pad1_adjoint(grad.float()).to(grad.dtype)
    out = reflection_pad1_adjoint(grad)
    for row, inner_row, pad_row in ((1, 2, 0), (-2, -3, -1)):
        for col, inner_col, pad_col in ((1, 2, 0), (-2, -3, -1)):
            total = grad[..., inner_row, inner_col].float() + grad[..., pad_row, inner_col].float()
            total += grad[..., inner_row, pad_col].float()
            total += grad[..., pad_row, pad_col].float()
            out[..., row, col] = total.to(grad.dtype)
    return out


class _ReflectionPad1(torch.autograd.Function):  # PyTorch's forward, the adjoint above as backward
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (1, 1, 1, 1), mode="reflect")

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return reflection_pad1_adjoint(grad)


class _ReflectionPad1Low(torch.autograd.Function):  # the padding in the input's own reduced precision
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False):  # a copy of x's values: its float32 twin casts back to them
            return F.pad(x, (1, 1, 1, 1), mode="reflect")

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return reflection_pad1_adjoint_low(grad)


def _cpu_autocast_low(x: torch.Tensor) -> bool:
    """Whether x is a bf16 / fp16 activation of a CPU autocast region, which autocast would pad in float32."""
    return (
        x.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and x.dtype == torch.get_autocast_dtype("cpu")
        and x.dtype in (torch.bfloat16, torch.float16)
    )


class ReflectionPad1(nn.ReflectionPad2d):
    """``nn.ReflectionPad2d(1)`` whose gradient on a CPU in float32 NCHW is ``reflection_pad1_adjoint``.

    Under CPU autocast a bf16 / fp16 input is padded in its own precision (autocast pads in float32, then the
    convolution casts the result back: two copies of every padded activation each way), with the gradient of
    ``reflection_pad1_adjoint_low``. Elsewhere (CUDA, float32 NHWC) the module is ``nn.ReflectionPad2d(1)``.
    """

    def __init__(self):
        """Pad by one pixel on each side."""
        super().__init__(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad (N, C, H, W) to (N, C, H+2, W+2), H and W at least 2."""
        if _cpu_float32_nchw(x):
            return _ReflectionPad1.apply(x)
        if _cpu_autocast_low(x):
            return _ReflectionPad1Low.apply(x)
        return super().forward(x)


# Under CPU bf16 autocast a convolution's weight gradient is summed over row bands whose input and output-gradient
# rows take about this many bytes, where the map holds more than two bands: oneDNN's bf16 kernel ran 1.3-2.6x
# faster on such bands than on a whole 256 x 256 or 512 x 512 map, wide (132 -> 128 channels) or thin (16 -> 8),
# and no faster on maps of one or two bands (docs/benchmark.md).
WEIGHT_GRAD_BAND_BYTES = 4 * 2**20


def weight_grad_band_pixels(in_channels: int, out_channels: int, stride: int, itemsize: int = 2) -> int:
    """Output pixels of one band of ``banded_weight_grad``: input and gradient rows in ``WEIGHT_GRAD_BAND_BYTES``.

    Parameters
    ----------
    in_channels, out_channels : int
        The convolution's channels.
    stride : int
        Its stride: each output pixel reads ``stride**2`` input pixels.
    itemsize : int, optional
        Bytes per element. Default 2 (bf16).

    Returns
    -------
    int
        At least 1.
    """
    return max(1, WEIGHT_GRAD_BAND_BYTES // (itemsize * (in_channels * stride * stride + out_channels)))


def banded_weight_grad(
    grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, stride: int, bias: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weight (and bias) gradient of an unpadded convolution ``conv2d(x, weight, stride=stride)``, by row bands.

    Each band of whole rows, about ``weight_grad_band_pixels`` output pixels, pairs its rows of ``grad`` with
    the input rows they read (the band plus the kernel's reach); the bands' gradients add up to the whole map's.

    Parameters
    ----------
    grad : Tensor
        Gradient of the convolution's output, (N, C_out, H_out, W_out).
    x : Tensor
        The convolution's input, (N, C_in, H, W), same dtype as ``grad``.
    weight : Tensor
        The weight the convolution used, (C_out, C_in, k, k), same dtype as ``x``.
    stride : int
        The convolution's stride (dilation 1, no padding, one group).
    bias : bool, optional
        Whether to compute the bias gradient too (the sum of ``grad`` per channel). Default False.

    Returns
    -------
    grad_weight : Tensor
        float32 (C_out, C_in, k, k): each band's gradient (oneDNN's, rounded to ``x``'s dtype) summed in float32.
    grad_bias : Tensor or None
        float32 (C_out,) likewise, or None without ``bias``.
    """
    rows, cols = grad.shape[-2:]
    band = max(1, weight_grad_band_pixels(x.shape[1], grad.shape[1], stride, x.element_size()) // cols)
    reach = weight.shape[-2]
    total_weight = total_bias = None
    for top in range(0, rows, band):
        n = min(band, rows - top)
        _, part_weight, part_bias = _unpadded_conv_backward(
            grad[:, :, top : top + n],
            x[:, :, top * stride : (top + n - 1) * stride + reach],
            weight,
            stride,
            [False, True, bias],
        )
        if total_weight is None:
            total_weight, total_bias = part_weight.float(), part_bias.float() if bias else None
        else:
            total_weight.add_(part_weight)
            if bias:
                total_bias.add_(part_bias)
    return total_weight, total_bias


def _unpadded_conv_backward(grad, x, weight, stride, mask):
    """Gradients of ``conv2d(x, weight, stride=stride)`` (oneDNN's) for input, weight and bias, where ``mask`` says."""
    bias_sizes = [weight.shape[0]] if mask[2] else None
    return torch.ops.aten.convolution_backward(
        grad, x, weight, bias_sizes, [stride] * 2, [0, 0], [1, 1], False, [0, 0], 1, mask
    )


class _BandedWeightGradConv(torch.autograd.Function):  # autocast's bf16 convolution, the gradient above
    @staticmethod
    def forward(ctx, x, weight, bias, stride):
        low = torch.get_autocast_dtype("cpu")
        low_x, low_weight = x.to(low), weight.to(low)  # the casts autocast makes: its output to the bit
        ctx.save_for_backward(low_x, low_weight)
        ctx.stride, ctx.has_bias, ctx.x_dtype = stride, bias is not None, x.dtype
        return F.conv2d(low_x, low_weight, None if bias is None else bias.to(low), stride)

    @staticmethod
    def backward(ctx, grad):
        x, low_weight = ctx.saved_tensors
        stride = ctx.stride
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = _unpadded_conv_backward(grad, x, low_weight, stride, [True, False, False])[0].to(ctx.x_dtype)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            with_bias = ctx.has_bias and ctx.needs_input_grad[2]
            grad_weight, grad_bias = banded_weight_grad(grad, x, low_weight, stride, bias=with_bias)
        return grad_x, grad_weight, grad_bias, None


class BandedGradConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose weight gradient under CPU bf16 autocast is summed over row bands.

    Forwards it is ``nn.Conv2d`` under autocast to the bit (same parameters, same bf16 output). For an unpadded
    convolution (the reflection-padded net's) over more than two bands (``weight_grad_band_pixels``), its
    weight and bias gradients are ``banded_weight_grad``'s (the bands' bf16 gradients summed in float32, where
    autocast rounds the whole map's sum to bf16 once); the input gradient is oneDNN's own.
    Elsewhere (float32, CUDA, small maps, zero padding) it is ``nn.Conv2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve ``x`` (N, in_channels, H, W)."""
        if not self._bands(x):
            return super().forward(x)
        return _BandedWeightGradConv.apply(x, self.weight, self.bias, self.stride[0])

    def _bands(self, x: torch.Tensor) -> bool:
        plain = self.padding == (0, 0) and self.dilation == (1, 1) and self.groups == 1
        square = self.kernel_size[0] == self.kernel_size[1] > 1 and self.stride[0] == self.stride[1]
        if not (plain and square and torch.is_grad_enabled() and x.dim() == 4 and x.device.type == "cpu"):
            return False
        # bf16 only (measured there); a float32 input (the net's code z) is cast by autocast like the weight.
        bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        out_pixels = ((x.shape[-2] - self.kernel_size[0]) // self.stride[0] + 1) * (
            (x.shape[-1] - self.kernel_size[1]) // self.stride[1] + 1
        )
        band = weight_grad_band_pixels(self.in_channels, self.out_channels, self.stride[0])
        return bf16 and x.dtype in (torch.bfloat16, torch.float32) and out_pixels > 2 * band


def padded_conv(cin: int, cout: int, kernel: int, padding: str, stride: int = 1, split: int = 0) -> nn.Module:
    """Build a convolution that keeps its input's size (stride 1), padded by reflection or with zeros.

    Parameters
    ----------
    cin, cout : int
        Input and output channels.
    kernel : int
        Kernel size (odd).
    padding : {"reflection", "zero"}
        Border handling; "reflection" is the official code's default.
    stride : int, optional
        Convolution stride. Default 1.
    split : int, optional
        Input channels of the first of two concatenated inputs (a ``SplitGradConv2d``, stride 1); 0 (default)
        for a plain ``Conv2d``.

    Returns
    -------
    nn.Module
        ``Conv2d`` for zero padding; ``Sequential(pad, Conv2d)`` for reflection, whose pad is an ``Identity``
        for a 1x1 kernel (same state-dict keys as the official ``ReflectionPad2d(0)``, without its copy) and a
        ``ReflectionPad1`` for a 3x3 one.
    """
    border = (kernel - 1) // 2
    conv_padding = 0 if padding == "reflection" else border
    if split:
        conv = SplitGradConv2d(split, cin, cout, kernel, stride, padding=conv_padding)
    elif kernel == 1 and stride == 1 and cin <= THIN_POINTWISE_MAX_CHANNELS:
        conv = ThinPointwiseConv2d(cin, cout, 1)
    else:
        conv = BandedGradConv2d(cin, cout, kernel, stride, padding=conv_padding)
    if padding == "reflection":
        if border == 0:
            pad = nn.Identity()
        elif border == 1:
            pad = ReflectionPad1()
        else:
            pad = nn.ReflectionPad2d(border)
        return nn.Sequential(pad, conv)
    return conv


class _SplitGradInputConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, split, padding):
        ctx.save_for_backward(x, weight)
        ctx.split, ctx.padding, ctx.has_bias = split, padding, bias is not None
        return F.conv2d(x, weight, bias, 1, padding)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        split, padding = ctx.split, ctx.padding
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            # The transposed convolution of each channel group, concatenated: oneDNN's grad-input kernel for an
            # input channel count like 132 (a skip branch's 4 next to 128) runs ~30 % slower than for 128 + 4.
            grad_x = torch.cat(
                [
                    F.conv_transpose2d(grad, weight[:, :split], padding=padding),
                    F.conv_transpose2d(grad, weight[:, split:], padding=padding),
                ],
                dim=1,
            )
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            _, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
                grad,
                x,
                weight,
                [weight.shape[0]] if ctx.has_bias else None,
                [1, 1],
                [padding, padding],
                [1, 1],
                False,
                [0, 0],
                1,
                [False, ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]],
            )
        return grad_x, grad_weight, grad_bias, None, None


class SplitGradConv2d(BandedGradConv2d):
    """A stride-1 ``Conv2d`` over concatenated inputs whose input gradient is computed per input group.

    Identical to ``nn.Conv2d`` forwards (same parameters, same output); on a CPU in float32 NCHW its input
    gradient is the concatenation of one transposed convolution per group of input channels (the skip branch's,
    then the deeper branch's). The result is the same to the bit; oneDNN is faster on 4 + 128 channels than on
    132 (docs/benchmark.md).

    Parameters
    ----------
    split : int
        Input channels of the first group (0 < split < in_channels).
    *args, **kwargs
        As for ``nn.Conv2d``; the stride must be 1, the padding symmetric and the padding mode "zeros".
    """

    def __init__(self, split: int, *args, **kwargs):
        """Build the convolution; see the class docstring."""
        super().__init__(*args, **kwargs)
        if not 0 < split < self.in_channels:
            raise ValueError(f"split must lie in (0, {self.in_channels}), got {split}.")
        plain = self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
        symmetric = not isinstance(self.padding, str) and self.padding[0] == self.padding[1]
        if not (plain and symmetric and self.padding_mode == "zeros"):
            raise ValueError("SplitGradConv2d supports stride 1, dilation 1, one group and equal zero padding only.")
        self.split = split

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve ``x`` (N, in_channels, H, W)."""
        if not _cpu_float32_nchw(x):
            return super().forward(x)
        return _SplitGradInputConv.apply(x, self.weight, self.bias, self.split, self.padding[0])


# Up to this many input channels a 1x1 convolution is a matrix product: measured on 8 (faster) and 32, 128 (not).
THIN_POINTWISE_MAX_CHANNELS = 8


class ThinPointwiseConv2d(nn.Conv2d):
    """A 1x1 ``Conv2d`` with few input channels, computed as one matrix product on a CPU.

    oneDNN spends ~3x longer than a BLAS matrix product on, e.g., the noise-impedance net's 8 -> 3 output
    convolution at 512 x 512 (docs/benchmark.md). Same parameters as ``nn.Conv2d(cin, cout, 1)``; in float32
    NCHW with batch 1 on a CPU the output is ``bias + W @ x`` (equal to float32 rounding), elsewhere it is
    ``nn.Conv2d``'s.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve ``x`` (N, in_channels, H, W)."""
        if x.dim() != 4 or x.shape[0] != 1 or self.bias is None or not _cpu_float32_nchw(x):
            return super().forward(x)
        _, channels, height, width = x.shape
        weight = self.weight.view(self.out_channels, channels)
        return torch.addmm(self.bias[:, None], weight, x.view(channels, height * width)).view(1, -1, height, width)


def as_plain_pytorch(net: nn.Module) -> nn.Module:
    """Copy ``net`` with every layer of this module replaced by the ``torch.nn`` layer it stands for.

    The copy is the network as the official code builds it (``ReflectionPad2d(0)`` before 1x1 convolutions,
    ``nn.ReflectionPad2d(1)``, ``nn.Conv2d``, ``nn.Upsample``, ``nn.BatchNorm2d``), with the same weights and
    state-dict keys: the benchmark's plain reference, and what the tests compare this module's layers against.

    Parameters
    ----------
    net : nn.Module
        A network built with ``padded_conv`` / ``Upsample2x`` (e.g. ``dip.core.models.SkipNet``).

    Returns
    -------
    nn.Module
        An independent copy (``net`` is unchanged).
    """
    plain = copy.deepcopy(net)
    for module in list(plain.modules()):
        for name, child in module.named_children():
            if isinstance(child, ReflectionPad1):
                setattr(module, name, nn.ReflectionPad2d(1))
            elif isinstance(child, Upsample2x):
                setattr(module, name, nn.Upsample(scale_factor=2, mode=child.mode))
            elif isinstance(child, (BandedGradConv2d, ThinPointwiseConv2d)):
                conv = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride, child.padding)
                conv.load_state_dict(child.state_dict())
                setattr(module, name, conv.to(child.weight.device, child.weight.dtype))
            elif isinstance(child, WideBatchNorm2d):
                norm = nn.BatchNorm2d(child.num_features, child.eps, child.momentum)
                norm.load_state_dict(child.state_dict())
                setattr(module, name, norm.to(child.weight.device, child.weight.dtype))
            elif isinstance(child, nn.Identity) and name == "0" and _pads_a_pointwise_conv(module):
                module[0] = nn.ReflectionPad2d(0)  # the official 1x1 convolution's padding, see padded_conv
    return plain


def _pads_a_pointwise_conv(module: nn.Module) -> bool:
    return isinstance(module, nn.Sequential) and len(module) == 2 and getattr(module[1], "kernel_size", None) == (1, 1)
