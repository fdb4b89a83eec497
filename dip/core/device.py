"""Device choice and process-level tuning (allocator, threads, cuDNN)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from typing import Optional

import torch

from dip.core.errors import ConfigError

_allocator_tuned = False
_libc = None  # glibc, once tune_allocator has tuned it
_threads_tuned = False


def available_devices() -> list[str]:
    """List the device types usable here, best first.

    Returns
    -------
    list of str
        A subset of ["cuda", "mps", "cpu"], in that order; "cpu" is always last.
    """
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found + ["cpu"]


def pick_device(preferred: Optional[str | torch.device] = None) -> torch.device:
    """Pick the device to run on: CUDA, then MPS, then CPU; or the ``preferred`` one.

    Parameters
    ----------
    preferred : str, torch.device or None, optional
        "cuda", "cuda:1", "mps", "cpu", or None / "" / "auto" for the best available; a ``torch.device`` is
        returned as is.

    Returns
    -------
    torch.device
        For CUDA, ``cudnn.benchmark`` is switched on (fixed input size for the whole run).

    Raises
    ------
    ConfigError
        If the preferred device type is not available here.
    """
    if isinstance(preferred, torch.device):
        return preferred
    if preferred in (None, "", "auto"):
        dev = torch.device(available_devices()[0])
    else:
        dev = torch.device(preferred)
        if dev.type not in available_devices():
            available = ", ".join(available_devices())
            raise ConfigError(f"device {preferred!r} is not available here; available: {available}.")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size for the whole run: let cuDNN pick kernels once
    return dev


def describe_device(dev: torch.device) -> str:
    """Name the device for people, e.g. "CUDA · NVIDIA H100", "Apple MPS" or "CPU · 2 threads"."""
    if dev.type == "cuda":
        return f"CUDA · {torch.cuda.get_device_name(dev)}"
    if dev.type == "mps":
        return "Apple MPS"
    n = torch.get_num_threads()
    return f"CPU · {n} thread{'s' if n != 1 else ''}"


@functools.cache  # asked for the precision, the memory format and the warning of every FitStep; flags never change
def cpu_supports_bf16() -> bool:
    """Return True when the CPU has native bf16 arithmetic (AVX512-BF16 or AMX), where bf16 autocast pays off.

    Reads /proc/cpuinfo once per process; False where it cannot be read.
    """
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


PRECISION_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}  # autocast dtype -> name


def autocast_dtype(precision: str, dev: torch.device) -> Optional[torch.dtype]:
    """Resolve a precision setting to the autocast dtype on a device.

    Parameters
    ----------
    precision : {"auto", "fp32", "bf16", "fp16"}
        The setting; "auto" is bf16 on CUDA with bf16 (else fp16) and on CPUs with native bf16, else fp32.
    dev : torch.device
        The device the fit runs on.

    Returns
    -------
    torch.dtype or None
        ``torch.bfloat16`` or ``torch.float16``, or None for plain float32.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if dev.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dev.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None


def prefers_channels_last(amp: Optional[torch.dtype], dev: torch.device) -> bool:
    """Tell whether NHWC activations pay off for autocast dtype ``amp`` (None: float32) on ``dev``.

    oneDNN's bf16 and CUDA's tensor-core convolutions are fastest in NHWC; plain float32 on a CPU is faster in
    NCHW (3x3 conv, 128 channels, 256², 2-core AVX2 EPYC: 64 GFLOP/s NCHW, 39 NHWC). MPS stays NCHW.

    Parameters
    ----------
    amp : torch.dtype or None
        Autocast dtype, None for float32.
    dev : torch.device
        The device the fit runs on.

    Returns
    -------
    bool
        True on CUDA, and on a CPU with autocast.
    """
    return dev.type == "cuda" or (dev.type == "cpu" and amp is not None)


def slow_precision_note(precision: str, dev: torch.device) -> Optional[str]:
    """Warn when an explicitly chosen reduced precision has no hardware path on this CPU.

    Without AVX512-BF16/AMX, bf16 and fp16 convolutions are emulated: a 3x3 conv ran at 4 GFLOP/s in bf16 on a
    2-core AVX2 EPYC against 64 in float32. ("auto" never picks them there.)

    Parameters
    ----------
    precision : {"auto", "fp32", "bf16", "fp16"}
        The setting.
    dev : torch.device
        The device the fit runs on.

    Returns
    -------
    str or None
        The warning text, or None when the precision is not "bf16" / "fp16" on such a CPU.
    """
    if dev.type != "cpu" or precision not in ("bf16", "fp16") or cpu_supports_bf16():
        return None
    return (
        f"precision {precision!r} on a CPU without native bf16/fp16 arithmetic (no AVX512-BF16 or AMX) is "
        f"emulated and many times slower than float32; use 'auto' or 'fp32' here."
    )


def precision_name(precision: str, dev: torch.device) -> str:
    """Name what a precision setting computes in on ``dev``: "fp32", or "bf16" / "fp16" autocast ("auto" resolved).

    Parameters
    ----------
    precision : {"auto", "fp32", "bf16", "fp16"}
        The setting.
    dev : torch.device
        The device the fit runs on.

    Returns
    -------
    str
        "fp32", "bf16" or "fp16".
    """
    return PRECISION_NAMES[autocast_dtype(precision, dev)]


def tune_allocator() -> None:
    """Stop glibc from returning big activation buffers to the OS after every iteration.

    Without this, each iteration re-faults the same pages (measured: 1.8 M page faults per denoising step at
    512 px); keeping them cuts CPU iteration time by about 40 %. Every allocation comes from the heap (no
    ``mmap``) and the heap is never trimmed on ``free``: with a 1 GiB trim threshold the 512 px denoising step
    still re-faulted up to 1 GiB (262 k faults) per iteration in some processes; never trimming took it from 75 k
    to 6 k faults per iteration on average and 7 % faster (docs/benchmark.md).
    ``release_memory`` hands the free pages back once a fit ends. A no-op off glibc.
    """
    global _libc, _allocator_tuned
    if _allocator_tuned:
        return
    _allocator_tuned = True
    libc_name = ctypes.util.find_library("c")
    if not libc_name or os.name != "posix":
        return
    try:
        libc = ctypes.CDLL(libc_name)
        m_trim_threshold, m_mmap_max = -1, -4
        libc.mallopt(m_mmap_max, 0)
        libc.mallopt(m_trim_threshold, -1)  # -1: never trim (mallopt(3))
        _libc = libc
    except (OSError, AttributeError):
        pass


def release_memory() -> None:
    """Return the heap's free pages to the OS (glibc ``malloc_trim``), after a fit under ``tune_allocator``.

    The server then holds no more memory between jobs than before the tuning. A no-op when the allocator was not
    tuned.
    """
    if _libc is not None:
        try:
            _libc.malloc_trim(0)
        except AttributeError:  # a libc without malloc_trim (not glibc)
            pass


def synchronize(dev: torch.device) -> None:
    """Wait for the device's queued work (a no-op on CPU, where every op has finished when it returns).

    Parameters
    ----------
    dev : torch.device
        CUDA, MPS or CPU device.
    """
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


def available_cpus() -> int:
    """Count the CPUs this process may use: its affinity mask, capped by a container's CPU quota.

    Returns
    -------
    int
        At least 1; a cgroup quota (v2 ``cpu.max`` or v1 ``cfs_quota_us``) counts whole CPUs.
    """
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = _cgroup_cpu_limit()
    return max(1, min(n, limit) if limit else n)


def _cgroup_cpu_limit() -> Optional[int]:
    """Whole CPUs allowed by a cgroup quota (v2 ``cpu.max`` or v1 ``cfs_quota_us``), or None without one."""
    fields = _read("/sys/fs/cgroup/cpu.max").split()
    if len(fields) != 2:
        fields = [_read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")]
    try:
        quota, period = float(fields[0]), float(fields[1])
    except ValueError:  # "max" or no cgroup files: no quota
        return None
    return max(1, int(quota // period)) if quota > 0 and period > 0 else None


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def tune_threads() -> int:
    """Cap torch's intra-op threads at the CPUs this process may use.

    torch starts one thread per physical core of the machine, which in a container with a CPU quota or a
    narrower affinity mask oversubscribes the CPUs, and every OpenMP barrier then waits for a descheduled
    thread. The count is only ever lowered, once per process, and an explicit OMP_NUM_THREADS wins.

    Returns
    -------
    int
        torch's intra-op thread count afterwards.
    """
    global _threads_tuned
    if not _threads_tuned and "OMP_NUM_THREADS" not in os.environ:
        _threads_tuned = True
        if torch.get_num_threads() > available_cpus():
            torch.set_num_threads(available_cpus())
    return torch.get_num_threads()
