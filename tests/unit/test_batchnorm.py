"""WideBatchNorm2d is nn.BatchNorm2d to rounding: output, gradients and running statistics (dip.core.batchnorm)."""

import pytest
import torch
from torch import nn

from dip.core import batchnorm
from dip.core.batchnorm import WideBatchNorm2d, widening
from dip.core.layers import as_plain_pytorch
from dip.core.models import SkipNet, SkipNetConfig


def _pair(channels, dtype=torch.float64, **kwargs):
    """A WideBatchNorm2d and an nn.BatchNorm2d (in ``dtype``) with the same random affine parameters."""
    torch.manual_seed(channels)
    plain = nn.BatchNorm2d(channels, **kwargs)
    nn.init.uniform_(plain.weight, 0.5, 1.5)
    nn.init.uniform_(plain.bias, -0.5, 0.5)
    wide = WideBatchNorm2d(channels, **kwargs)
    wide.load_state_dict(plain.state_dict())
    return wide, plain.to(dtype)


def _nhwc(channels, side, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    # An offset mean, as after a convolution, so that a wrong mean subtraction would show.
    x = torch.randn(1, channels, side, side, generator=gen) * 3 + 1
    return x.to(dtype).contiguous(memory_format=torch.channels_last)


def _run(norm, x, grad, module=None):
    """Output and gradients (input, weight, bias) of ``module`` (default ``norm``); ``norm`` holds the parameters."""
    x = x.clone().requires_grad_()
    out = (module or norm)(x)
    out.backward(grad)
    return [out, x.grad, norm.weight.grad, norm.bias.grad]


def _relative_errors(results, exact):
    return [((r.double() - e).abs().max() / e.abs().max()).item() for r, e in zip(results, exact)]


@pytest.mark.parametrize("channels, side", [(8, 128), (4, 160), (3, 160)])
def test_float32_output_and_gradients_are_batch_norms_to_rounding(channels, side):
    wide, exact = _pair(channels)
    x, grad = _nhwc(channels, side, torch.float32), _nhwc(channels, side, torch.float32, seed=1)
    assert widening(x) > 1  # the wide path runs
    errors = _relative_errors(_run(wide, x, grad), _run(exact, x.double(), grad.double()))
    assert max(errors) < 1e-5, errors  # measured 1e-7 to 2e-6 (nn.BatchNorm2d itself: 6e-7 to 1e-5)


def test_bf16_output_and_gradients_are_within_bf16_rounding():
    wide, exact = _pair(8)
    x, grad = _nhwc(8, 128, torch.bfloat16), _nhwc(8, 128, torch.bfloat16, seed=1)
    out, grad_x, grad_weight, grad_bias = _run(wide, x, grad)
    assert out.dtype == grad_x.dtype == torch.bfloat16 and grad_weight.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last)
    errors = _relative_errors([out, grad_x, grad_weight, grad_bias], _run(exact, x.double(), grad.double()))
    # Output: one bf16 rounding (2^-8 relative); input gradient: two more roundings of a correction term;
    # the parameter gradients are float32 sums.
    assert errors[0] < 2**-8 and errors[1] < 2**-7 and max(errors[2:]) < 1e-4, errors


@pytest.mark.parametrize("momentum", [0.1, None])
def test_running_statistics_follow_nn_batchnorm(momentum):
    wide, plain = _pair(8, torch.float32, momentum=momentum)
    for seed in range(3):
        x = _nhwc(8, 128, torch.float32, seed)
        wide(x), plain(x)
    assert wide.num_batches_tracked.item() == plain.num_batches_tracked.item() == 3
    torch.testing.assert_close(wide.running_mean, plain.running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(wide.running_var, plain.running_var, rtol=1e-5, atol=1e-6)


def test_an_inplace_activation_after_it_keeps_the_gradients():
    # A Function's output changed in place must not be a view: the net's LeakyReLU(inplace=True) follows.
    wide, exact = _pair(8)
    x, grad = _nhwc(8, 128, torch.float32), _nhwc(8, 128, torch.float32, seed=1)
    got = _run(wide, x, grad, nn.Sequential(wide, nn.LeakyReLU(0.2, inplace=True)))
    want = _run(exact, x.double(), grad.double(), nn.Sequential(exact, nn.LeakyReLU(0.2, inplace=True)))
    assert max(_relative_errors(got, want)) < 1e-5


@pytest.mark.parametrize(
    "shape, layout",
    [
        ((1, 8, 128, 128), torch.contiguous_format),  # NCHW: PyTorch's kernel is fast there
        ((1, 16, 128, 128), torch.channels_last),  # 16 channels: measured no faster
        ((1, 8, 64, 64), torch.channels_last),  # a small map
        ((1, 3, 129, 129), torch.channels_last),  # pixels not divisible by 32 // 3 = 10
    ],
)
def test_other_inputs_use_nn_batchnorm(shape, layout):
    x = torch.randn(shape).contiguous(memory_format=layout)
    assert widening(x) == 1
    wide, plain = _pair(shape[1], torch.float32)
    assert torch.equal(wide(x), plain(x))


def test_eval_mode_is_nn_batchnorm_to_the_bit():
    wide, plain = _pair(8, torch.float32)
    x = _nhwc(8, 128, torch.float32)
    plain(x)  # one training step, so the running statistics are not the defaults
    wide.load_state_dict(plain.state_dict())
    wide.eval(), plain.eval()
    assert torch.equal(wide(x), plain(x))


def test_the_net_and_its_torch_nn_twin_keep_the_parameter_count(monkeypatch):
    cfg = SkipNetConfig(
        input_channels=3,
        output_channels=3,
        channels_down=(8, 16, 32, 64, 128),
        channels_up=(8, 16, 32, 64, 128),
        channels_skip=(0, 0, 0, 4, 4),
    )
    net = SkipNet(cfg)
    plain = as_plain_pytorch(net)
    assert not any(isinstance(m, WideBatchNorm2d) for m in plain.modules())
    assert sum(isinstance(m, WideBatchNorm2d) for m in net.modules()) == 27
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in plain.parameters()) == 572_827
    assert net.state_dict().keys() == plain.state_dict().keys()
    # A small NHWC net with the wide path forced on: the float64 twin's output to float32 rounding (27 batch
    # norms deep, measured 1.0-1.6e-5 off; the float32 twin itself 0.7-1.3e-5).
    monkeypatch.setattr(batchnorm, "WIDE_MIN_PIXELS", 16)
    z = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    exact = plain.double()(z.double())
    out = net.to(memory_format=torch.channels_last)(z.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out.double(), exact, rtol=0, atol=5e-5)
