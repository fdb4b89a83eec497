"""The rewritten layers (dip.core.layers) compute what the torch.nn layers they replace compute."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import continue_fit, denoising_in_progress

from dip.core import layers
from dip.core.fit import to_image
from dip.core.layers import (
    BandedGradConv2d,
    ReflectionPad1,
    SplitGradConv2d,
    ThinPointwiseConv2d,
    as_plain_pytorch,
    banded_weight_grad,
    bilinear_upsample2x_adjoint,
    reflection_pad1_adjoint,
    upsample2x,
)
from dip.core.metrics import psnr
from dip.core.models import SkipNet, SkipNetConfig, count_parameters
from dip.core.presets import get_preset


def _close(actual, expected, rtol=1e-6):
    """Equal to float32 rounding: the largest difference within rtol of the largest value."""
    return (actual - expected).abs().max() <= rtol * expected.abs().max()


@pytest.mark.parametrize("shape", [(1, 16, 1, 1), (1, 3, 1, 5), (2, 4, 7, 3), (1, 8, 32, 48)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_bilinear_upsampling_keeps_pytorchs_output_and_gradient(shape, channels_last):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, ref = upsample2x(ours, "bilinear"), F.interpolate(theirs, scale_factor=2, mode="bilinear")
    assert torch.equal(out, ref)  # the forward is PyTorch's own
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1))
    out.backward(grad)
    ref.backward(grad)
    assert not torch.equal(ours.grad, torch.zeros_like(ours.grad))
    assert _close(ours.grad, theirs.grad)
    assert ours.grad.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@pytest.mark.parametrize(
    "op, adjoint, x_shape",
    [
        (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), bilinear_upsample2x_adjoint, (1, 2, 5, 6)),
        (lambda x: F.pad(x, (1, 1, 1, 1), mode="reflect"), reflection_pad1_adjoint, (1, 2, 5, 4)),
    ],
    ids=["bilinear-upsampling", "reflection-padding"],
)
def test_each_adjoint_is_the_transpose_of_its_op(op, adjoint, x_shape):
    # <A(x), g> == <x, A*(g)> for random x, g: the defining property, independent of PyTorch's backward.
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(x_shape, generator=gen, dtype=torch.float64)
    g = torch.randn(op(x).shape, generator=gen, dtype=torch.float64)
    assert torch.isclose((op(x) * g).sum(), (x * adjoint(g)).sum(), rtol=1e-12)


@pytest.mark.parametrize("shape", [(1, 16, 2, 2), (1, 3, 2, 7), (2, 4, 9, 3), (1, 8, 32, 48)])
def test_reflection_padding_keeps_pytorchs_output_and_gradient(shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(6))
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, ref = ReflectionPad1()(ours), torch.nn.ReflectionPad2d(1)(theirs)
    assert torch.equal(out, ref)
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(7))
    out.backward(grad)
    ref.backward(grad)
    assert out.grad_fn.name().startswith("_ReflectionPad1")  # the rewritten backward ran
    assert _close(ours.grad, theirs.grad)


@pytest.mark.parametrize("shape", [(1, 16, 2, 2), (1, 3, 3, 7), (2, 4, 9, 3), (1, 8, 32, 48)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_reflection_padding_under_bf16_autocast_gives_autocasts_values_in_bf16(shape, channels_last):
    """Autocast pads in float32 and the next convolution casts back; padding in bf16 gives the same values, and the
    gradient the same float32 sums rounded once, without the casts."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(shape, generator=torch.Generator().manual_seed(8)).to(torch.bfloat16, memory_format=fmt)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, ref = ReflectionPad1()(ours), torch.nn.ReflectionPad2d(1)(theirs)
    assert ref.dtype == torch.float32 and out.dtype == torch.bfloat16  # autocast's float32 copy is gone
    assert out.grad_fn.name().startswith("_ReflectionPad1Low")
    assert torch.equal(out, ref.to(torch.bfloat16))
    assert out.is_contiguous(memory_format=fmt)
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(9)).to(torch.bfloat16)
    out.backward(grad)
    ref.backward(grad.float())  # what the convolution's cast hands back
    assert torch.equal(ours.grad, theirs.grad)
    assert ours.grad.is_contiguous(memory_format=fmt)


def test_the_lab_net_under_bf16_autocast_equals_its_plain_copy():
    """Under CPU autocast only the padding differs from torch.nn's (in bf16, not float32): same output and gradients."""
    torch.manual_seed(0)
    net = SkipNet(get_preset("lab-denoise").net).to(memory_format=torch.channels_last)
    plain = as_plain_pytorch(net)
    z = torch.rand(1, net.config.input_channels, 64, 64).to(memory_format=torch.channels_last)
    target = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    padded = []  # the dtype each 1-pixel padding hands its convolution
    for model in (net, plain):
        for m in model.modules():
            if isinstance(m, torch.nn.ReflectionPad2d) and m.padding == (1, 1, 1, 1):
                m.register_forward_hook(lambda m, i, o: padded.append((type(m).__name__, i[0].dtype, o.dtype)))
    for model in (net, plain):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(z)
        F.mse_loss(out.float(), target).backward()
        model.out = out
    bf16 = torch.bfloat16
    assert ("ReflectionPad1", bf16, bf16) in padded and ("ReflectionPad2d", bf16, torch.float32) in padded
    assert not [p for p in padded if p[0] == "ReflectionPad1" and p[1] == bf16 and p[2] != bf16]
    assert torch.equal(net.out, plain.out)
    for (name, p), q in zip(net.named_parameters(), plain.parameters()):
        assert torch.equal(p.grad, q.grad), name


@pytest.mark.parametrize("size", [7, 16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_upsampling_under_bf16_autocast_keeps_pytorchs_gradient_of_a_channel_slice(size, channels_last):
    """The gradient arrives as a channel slice of the concatenation's; made dense first, it is PyTorch's own."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    gen = torch.Generator().manual_seed(10)
    x = torch.randn(1, 8, size, size, generator=gen).to(torch.bfloat16, memory_format=fmt)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, ref = upsample2x(ours, "bilinear"), F.interpolate(theirs, scale_factor=2, mode="bilinear")
    assert out.grad_fn.name().startswith("_BilinearUpsample2xDenseGrad")
    assert torch.equal(out, ref)
    concatenated = torch.randn(1, 12, 2 * size, 2 * size, generator=gen).to(torch.bfloat16, memory_format=fmt)
    out.backward(concatenated[:, 4:])
    ref.backward(concatenated[:, 4:])
    assert torch.equal(ours.grad, theirs.grad)
    assert ours.grad.is_contiguous(memory_format=fmt)


@pytest.mark.parametrize("stride, size, columns", [(1, 23, 9), (2, 31, 17), (1, 13, 40)])
def test_banded_weight_gradient_adds_up_to_the_whole_maps(stride, size, columns, monkeypatch):
    """Bands of 2 rows (the last one shorter), in float64: the bands' sums are the whole map's to rounding."""
    bytes_per_pixel = 8 * (5 * stride * stride + 6)  # float64 input and gradient rows per output pixel
    monkeypatch.setattr(layers, "WEIGHT_GRAD_BAND_BYTES", bytes_per_pixel * 2 * ((columns - 3) // stride + 1))
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(1, 5, size, columns, generator=gen, dtype=torch.float64)
    weight = torch.randn(6, 5, 3, 3, generator=gen, dtype=torch.float64)
    out_rows, out_cols = (size - 3) // stride + 1, (columns - 3) // stride + 1
    grad = torch.randn(1, 6, out_rows, out_cols, generator=gen, dtype=torch.float64)
    _, whole_weight, whole_bias = torch.ops.aten.convolution_backward(
        grad, x, weight, [6], [stride] * 2, [0, 0], [1, 1], False, [0, 0], 1, [False, True, True]
    )
    banded_weight, banded_bias = banded_weight_grad(grad, x, weight, stride, bias=True)
    assert out_rows % 2 == 1  # an odd number of rows: the last band is shorter
    assert _close(banded_weight, whole_weight.float()) and _close(banded_bias, whole_bias.float())
    assert banded_weight_grad(grad, x, weight, stride)[1] is None


@pytest.mark.parametrize("stride, size, input_dtype", [(1, 262, torch.bfloat16), (2, 327, torch.float32)])
def test_banded_convolution_under_bf16_autocast_is_autocasts_with_a_finer_weight_gradient(stride, size, input_dtype):
    """Output and input gradient to the bit; weight and bias gradients within bf16 rounding of the exact ones.

    The second case is the net's first convolution: its input, the code z, stays float32 under autocast.
    """
    gen = torch.Generator().manual_seed(12)
    ours = BandedGradConv2d(32, 32, 3, stride).to(memory_format=torch.channels_last)
    theirs = torch.nn.Conv2d(32, 32, 3, stride).to(memory_format=torch.channels_last)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(1, 32, size, size, generator=gen).to(input_dtype, memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, ref = ours(xa), theirs(xb)
    assert out.shape[-1] * out.shape[-2] > 2 * layers.weight_grad_band_pixels(32, 32, stride)  # three bands
    assert out.grad_fn.name().startswith("_BandedWeightGradConv")
    assert torch.equal(out, ref)
    grad = torch.randn(ref.shape, generator=gen).to(torch.bfloat16, memory_format=torch.channels_last)
    out.backward(grad)
    ref.backward(grad)
    assert xa.grad.dtype == input_dtype and torch.equal(xa.grad, xb.grad)
    exact_weight, exact_bias = torch.ops.aten.convolution_backward(
        grad.double(),
        x.to(torch.bfloat16).double(),
        ours.weight.detach().to(torch.bfloat16).double(),
        [32],
        [stride] * 2,
        [0, 0],
        [1, 1],
        False,
        [0, 0],
        1,
        [False, True, True],
    )[1:]
    for banded, autocasts, exact in (
        (ours.weight.grad, theirs.weight.grad, exact_weight),
        (ours.bias.grad, theirs.bias.grad, exact_bias),
    ):
        assert banded.dtype == torch.float32
        assert _close(banded.double(), exact, rtol=2**-8) and _close(autocasts.double(), exact, rtol=2**-8)
        assert not torch.equal(banded, autocasts)  # the banded sums really ran
    thin = BandedGradConv2d(32, 16, 3, stride).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a map of two bands or fewer: nn.Conv2d's
        assert ours(xa[:, :, :40, :40]).grad_fn.name() == "ConvolutionBackward0"
        assert thin(xa).grad_fn.name() == "ConvolutionBackward0"


@pytest.mark.parametrize("padding", [0, 1])
def test_split_gradient_convolution_equals_conv2d(padding):
    gen = torch.Generator().manual_seed(3)
    ours = SplitGradConv2d(4, 20, 16, 3, padding=padding)
    theirs = torch.nn.Conv2d(20, 16, 3, padding=padding)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(1, 20, 12, 10, generator=gen)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, ref = ours(xa), theirs(xb)
    assert torch.equal(out, ref)
    grad = torch.randn(ref.shape, generator=gen)
    out.backward(grad)
    ref.backward(grad)
    assert _close(xa.grad, xb.grad)
    assert _close(ours.weight.grad, theirs.weight.grad)
    assert _close(ours.bias.grad, theirs.bias.grad)


def test_thin_pointwise_convolution_equals_conv2d():
    gen = torch.Generator().manual_seed(5)
    ours, theirs = ThinPointwiseConv2d(8, 3, 1), torch.nn.Conv2d(8, 3, 1)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(1, 8, 9, 11, generator=gen)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, ref = ours(xa), theirs(xb)
    assert _close(out, ref)
    grad = torch.randn(ref.shape, generator=gen)
    out.backward(grad)
    ref.backward(grad)
    for a, b in ((xa.grad, xb.grad), (ours.weight.grad, theirs.weight.grad), (ours.bias.grad, theirs.bias.grad)):
        assert _close(a, b)
    batch = torch.randn(2, 8, 4, 4, generator=gen)  # the general path: nn.Conv2d's own
    assert torch.equal(ours(batch), theirs(batch))


def test_split_gradient_convolution_rejects_what_it_cannot_split():
    with pytest.raises(ValueError, match="split must lie in"):
        SplitGradConv2d(20, 20, 16, 3)
    with pytest.raises(ValueError, match="stride 1"):
        SplitGradConv2d(4, 20, 16, 3, stride=2)


@pytest.mark.parametrize("preset", ["lab-impedance", "lab-denoise"])
def test_the_lab_nets_equal_their_plain_pytorch_copy(preset):
    """Same parameters and state-dict keys; bit-identical output; every gradient equal to float32 rounding."""
    torch.manual_seed(0)
    net = SkipNet(get_preset(preset).net)
    plain = as_plain_pytorch(net)
    assert (
        count_parameters(net) == count_parameters(plain) == {"lab-impedance": 572_827, "lab-denoise": 2_217_831}[preset]
    )
    assert list(net.state_dict()) == list(plain.state_dict())
    assert not any(isinstance(m, torch.nn.Upsample) for m in net.modules())
    assert any(isinstance(m, torch.nn.Upsample) for m in plain.modules())
    assert any(isinstance(m, ReflectionPad1) for m in net.modules())
    assert not any(isinstance(m, ReflectionPad1) for m in plain.modules())
    assert all(type(m) is torch.nn.Conv2d for m in plain.modules() if isinstance(m, torch.nn.Conv2d))
    z = torch.rand(1, net.config.input_channels, 64, 64)
    out, ref = net(z), plain(z)
    assert torch.equal(out, ref)
    target = torch.rand(ref.shape, generator=torch.Generator().manual_seed(4))
    F.mse_loss(out, target).backward()
    F.mse_loss(ref, target).backward()
    # Against the largest gradient of the net (the biases before a batch norm have gradient 0 up to rounding),
    # and 1e-5, not each layer's 1e-6: rounding differences add up through 20 layers of backward pass
    # (1.2e-6 measured at the first layer, 0 at the last).
    largest = max(q.grad.abs().max() for q in plain.parameters())
    for (name, p), q in zip(net.named_parameters(), plain.parameters()):
        assert (p.grad - q.grad).abs().max() <= 1e-5 * largest, name


def test_zero_padding_and_avg_pooling_nets_equal_their_plain_copy():
    cfg = SkipNetConfig(channels_down=(8, 8), input_channels=4, padding="zero", downsample_mode="avg")
    net = SkipNet(cfg)
    z = torch.rand(1, 4, 17, 19)
    assert torch.equal(net(z), as_plain_pytorch(net)(z))


def test_training_with_the_rewritten_layers_ends_within_0_1_db_of_plain_pytorch():
    """Denoising a 64x64 image: 150 iterations each way from the same state after 100 float32 iterations.

    Runs from scratch cannot resolve 0.1 dB (docs/benchmark.md: any rounding change, even the thread count,
    moves a 64x64 run by 0.1-0.3 dB), so both go on from the same state, and PSNR is the mean of the last 50.
    """
    x, problem, start = denoising_in_progress()
    psnrs = {}
    for name, net in (("rewritten", copy.deepcopy(start.net)), ("plain", as_plain_pytorch(start.net))):
        step = continue_fit(start, net=net)
        psnrs[name] = np.mean([psnr(x, to_image(step()[0]).clip(0, 1)) for _ in range(150)][-50:])
    assert psnrs["plain"] > problem.psnr_degraded + 4
    assert abs(psnrs["rewritten"] - psnrs["plain"]) < 0.1
