"""Batch norm over few channels of an NHWC tensor on a CPU, computed on a wider view of the same memory.

PyTorch's CPU batch norm vectorises a channels-last tensor along its channels; with fewer channels than a vector
holds it runs several times slower per element (8 channels: 4.2 ns per element forward + backward in bf16 on a
2-core Zen 4, against 0.6-0.9 ns for 32-160 channels; docs/benchmark.md). The noise-impedance net has 8 channels
at full size. An NHWC tensor of C channels is, in memory, a (pixels, C) matrix; read as (pixels / k, k * C) it is a
tensor of k * C channels, whose channel j holds channel j mod C of every k-th pixel. ``WideBatchNorm2d`` takes
the statistics of those k groups, combines them per channel, and normalises, and differentiates, on that view with
PyTorch's kernels. The maths is batch norm's own (training-mode statistics, the running averages as
``nn.BatchNorm2d`` keeps them); only the order of the sums differs, so the results agree with ``nn.BatchNorm2d``
to rounding, not to the bit.
"""

from __future__ import annotations

import torch
from torch import nn

# Channels of the wide view: a multiple of the 16 floats of an AVX-512 vector, where PyTorch's kernel ran at its
# per-element speed for 32-160 channels (measured).
WIDE_CHANNELS = 32
# Measured in bf16 against nn.BatchNorm2d (forward + backward): 4 and 8 channels at 128^2 and up took 0.2-0.8 of
# its time; with 16 channels the noise-impedance net's iteration did not get faster (1.015 and 1.046 of it at
# 512^2 and 256^2), and below 128^2 the few extra small ops cost more than they save.
WIDE_MAX_CHANNELS = 8
WIDE_MIN_PIXELS = 128 * 128


def widening(x: torch.Tensor) -> int:
    """How many pixels one row of the wide view holds for ``x`` (N, C, H, W): 1 where the plain kernel is used.

    Parameters
    ----------
    x : Tensor
        The batch norm's input.

    Returns
    -------
    int
        k > 1 for an NHWC CPU tensor of at most ``WIDE_MAX_CHANNELS`` channels and ``WIDE_MIN_PIXELS`` pixels,
        whose pixel count k divides; else 1.
    """
    channels = x.shape[1] if x.dim() == 4 else 0
    if not 0 < channels <= WIDE_MAX_CHANNELS or x.numel() < WIDE_MIN_PIXELS * channels:
        return 1
    if x.device.type != "cpu" or x.dtype not in (torch.bfloat16, torch.float32):
        return 1
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return 1  # NCHW (PyTorch's kernel runs at full speed there), or a strided view
    k = WIDE_CHANNELS // channels
    return k if (x.numel() // channels) % k == 0 else 1


def _wide(x: torch.Tensor, k: int) -> torch.Tensor:
    """View NHWC ``x`` (N, C, H, W) as a channels-last (1, k*C, 1, N*H*W/k) tensor over the same memory."""
    return x.permute(0, 2, 3, 1).reshape(1, 1, -1, k * x.shape[1]).permute(0, 3, 1, 2)


def _narrow(wide: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Undo ``_wide``: a channels-last tensor of ``like``'s shape over ``wide``'s memory, not a view of it.

    A Function's output that the next LeakyReLU changes in place must not be a view (autograd forbids it), and
    writing the output into a new tensor instead took 4x the batch norm's time.
    """
    return wide.new_empty(0).set_(wide.untyped_storage(), wide.storage_offset(), like.shape, like.stride())


class _WideBatchNorm(torch.autograd.Function):  # training-mode batch norm, computed on the wide view
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps, k):
        channels = x.shape[1]
        wide = _wide(x, k)
        # Float32 running buffers (left unchanged, momentum 0) make PyTorch return float32 statistics of bf16 input.
        unused_mean, unused_var = weight.new_zeros(k * channels), weight.new_ones(k * channels)
        group_mean, group_var = torch.ops.aten.batch_norm_update_stats(wide, unused_mean, unused_var, 0.0)
        group_mean, group_var = group_mean.view(k, channels), group_var.view(k, channels)
        mean = group_mean.mean(0)
        var = (group_var + (group_mean - mean).square()).mean(0)  # k equal groups: the whole batch's biased variance
        count = x.numel() // channels  # WideBatchNorm2d only comes here with running statistics to update
        running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
        running_var.mul_(1 - momentum).add_(var * (count / (count - 1)), alpha=momentum)
        # Eval-mode batch norm with the batch's statistics is the training-mode output.
        wide_out = torch.ops.aten.native_batch_norm(
            wide, weight.repeat(k), bias.repeat(k), mean.repeat(k), var.repeat(k), False, 0.0, eps
        )[0]
        ctx.save_for_backward(x, weight, mean, var)
        ctx.eps, ctx.k = eps, k
        return _narrow(wide_out, x)

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, var = ctx.saved_tensors
        k, eps = ctx.k, ctx.eps
        channels, count = x.shape[1], x.numel() // x.shape[1]
        grad = grad.contiguous(memory_format=torch.channels_last).to(x.dtype)
        wide_grad, wide_x = _wide(grad, k), _wide(x, k)
        wide_weight, wide_mean, wide_var = weight.repeat(k), mean.repeat(k), var.repeat(k)
        # Eval-mode backward with the batch's statistics: weight * invstd * grad, and per wide channel
        # sum(grad * x_hat) and sum(grad).
        wide_grad_x, group_dot, group_sum = torch.ops.aten.native_batch_norm_backward(
            wide_grad,
            wide_x,
            wide_weight,
            wide_mean,
            wide_var,
            None,
            None,
            False,
            eps,
            [ctx.needs_input_grad[0], True, True],
        )
        dot, total = group_dot.view(k, channels).sum(0), group_sum.view(k, channels).sum(0)
        grad_x = None
        if ctx.needs_input_grad[0]:
            # Training mode subtracts weight * invstd * (mean(grad) + x_hat * mean(grad * x_hat)): an eval-mode
            # batch norm of x with the batch's statistics.
            scale = weight * torch.rsqrt(var + eps) / count
            correction = torch.ops.aten.native_batch_norm(
                wide_x, (-scale * dot).repeat(k), (-scale * total).repeat(k), wide_mean, wide_var, False, 0.0, eps
            )[0]
            grad_x = _narrow(wide_grad_x.add_(correction), x)
        return grad_x, dot, total, None, None, None, None, None


class WideBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that, training on an NHWC CPU tensor of few channels, runs on a wider view (see module).

    Same parameters, buffers and state-dict keys as ``nn.BatchNorm2d``; its output and gradients agree with it to
    rounding (float32: ~1e-6; bf16: its own rounding). Elsewhere (eval mode, NCHW, CUDA, more than
    ``WIDE_MAX_CHANNELS`` channels, maps under ``WIDE_MIN_PIXELS``, no affine parameters or running statistics)
    it is ``nn.BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` (N, num_features, H, W)."""
        k = widening(x)
        if k == 1 or not (self.training and self.affine and self.track_running_stats):
            return super().forward(x)
        self.num_batches_tracked.add_(1)  # as nn.BatchNorm2d: momentum None is a cumulative average
        momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return _WideBatchNorm.apply(
            x, self.weight, self.bias, self.running_mean, self.running_var, momentum, self.eps, k
        )
