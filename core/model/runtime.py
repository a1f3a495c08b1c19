"""Where and how torch runs: the device, and process-wide settings that make CPU inference give the same
numbers at any thread count.

Without them the same photo, seed and model can end at different poses depending on how many threads torch
uses (``OMP_NUM_THREADS``, ``torch.set_num_threads``, the machine's core count): several CPU kernels split
their work into per-thread pieces and round differently depending on the split. A last-bit difference in
the matching probabilities changes the RANSAC draws, and a different sample can keep a different pose
(the demo's ``pinhole_001.jpg`` moved by 4.8 m between 1 and 2 threads).

:func:`make_cpu_reproducible` fixes the two library-level sources:

* **Intel MKL's ?gemm** (every ``nn.Linear``, ``matmul``, ``einsum``, and convolutions once oneDNN is
  off) splits the inner dimension across threads. MKL's strict conditional-numerical-reproducibility mode
  (``MKL_CBWR=<branch>,STRICT``) makes its results independent of the thread count. The branch follows the
  CPU torch dispatches to: ``AVX512`` keeps about 96 % of the gemm throughput on an AVX-512 CPU, whereas
  ``AVX2`` there would keep only about 60 %; other CPUs (ARM, older x86) are left alone. MKL reads the
  variable once, at its first call in the process, so this must run before any torch computation (it
  cannot change a process that already ran MKL); a value the user set is never overridden.
* **oneDNN (mkldnn) convolutions** depend on the thread count; with oneDNN disabled torch uses its own
  im2col + MKL gemm convolutions, which (under strict CNR) do not. This costs about 20 % of the demo's
  runtime on the CPU (the EfficientNet-Lite0 backbone's convolutions are slower).

The remaining sources are individual operators and are avoided where they are used (``model/matcher.py``,
``solver/ransac.py``, ``solver/procrustes.py``, ``solver/refine.py``): softmax over a non-last
dimension, element-wise kernels with a scalar tail loop (``elu``, ``sigmoid``), and reductions of a large tensor to one number.
GPU inference is not affected by any of this (nor made reproducible across GPUs by it).

The backbone's precision (:func:`resolve_precision`) can trade that promise for speed: ``bfloat16`` on a CPU
with bf16 instructions runs oneDNN's kernels (:func:`onednn_enabled`), about 3× faster than float32 for the
ViT-L backbone, and its results depend on the thread count (oneDNN splits its work by it) and the CPU.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext

import torch

from ..errors import Loc2Error
from ..types import DEVICES, PRECISION_AUTO, PRECISION_BFLOAT16, PRECISION_FLOAT32, PRECISIONS

# resolve_precision's answers besides the asked names: CUDA's ``auto`` (fp16, as the release runs it)
PRECISION_FLOAT16 = "float16"


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA if available, else Apple MPS, else CPU; other names are used as given."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if isinstance(device, torch.device):
        return device
    if device not in DEVICES:
        raise Loc2Error(f"unknown device {device!r} (use one of {', '.join(DEVICES)})")
    if device == "cuda" and not torch.cuda.is_available():
        raise Loc2Error("device 'cuda' was asked for but PyTorch sees no CUDA GPU (use --device cpu or auto)")
    mps = getattr(torch.backends, "mps", None)
    if device == "mps" and (mps is None or not mps.is_available()):
        raise Loc2Error("device 'mps' was asked for but PyTorch sees no Apple GPU (use --device cpu or auto)")
    return torch.device(device)


def describe_device(device: str = "auto") -> str:
    """What ``device`` will run on, for people: "CUDA: <GPU name>", "Apple MPS" or a CPU warning."""
    try:
        dev = resolve_device(device)
    except Loc2Error as exc:
        return str(exc)
    if dev.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(dev)}"
    if dev.type == "mps":
        return "Apple MPS"
    return "CPU — slow for the published weights"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX tiles or AVX512-BF16). Only there do oneDNN's
    bf16 kernels beat float32; elsewhere they emulate bf16 in float32 arithmetic (not measured here)."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # private in torch 2.x, hence getattr
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_precision(precision: str, device: torch.device) -> str:
    """The backbone's arithmetic for ``precision`` (``types.PRECISIONS``) on ``device``: ``float32``,
    ``float16`` (``auto`` on CUDA, as the release runs it) or ``bfloat16``. Loc2Error, saying what to choose
    instead, where the device has no fast bfloat16."""
    if precision not in PRECISIONS:
        raise Loc2Error(f"unknown precision {precision!r} (use one of {', '.join(PRECISIONS)})")
    if precision == PRECISION_AUTO:
        return PRECISION_FLOAT16 if device.type == "cuda" else PRECISION_FLOAT32
    if precision == PRECISION_BFLOAT16:
        if device.type == "mps":
            raise Loc2Error(
                "bfloat16 runs on CUDA GPUs and on CPUs with bf16 instructions, not on Apple MPS: "
                "choose the precision auto or float32"
            )
        if device.type == "cpu" and not cpu_has_native_bf16():
            raise Loc2Error(
                "this CPU has no bf16 instructions (AMX or AVX512-BF16), so bfloat16 would only be emulated "
                "here, with no gain over float32: choose the precision auto or float32"
            )
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise Loc2Error(
                f"{torch.cuda.get_device_name(device)} has no bfloat16: choose the precision auto"
            )
    return precision


@contextmanager
def onednn_enabled() -> Iterator[None]:
    """oneDNN on inside the block, as it was after. :func:`make_cpu_reproducible` turns it off for the
    process, but torch's fast bf16 CPU kernels are oneDNN's (without it a bf16 ViT-L forward is 4× slower
    than float32). Set for the process, not the thread: float32 work on other threads meanwhile (the solver)
    runs no oneDNN kernel (its products are MKL's either way)."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = True
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


def reduced_precision(device: torch.device, precision: str) -> AbstractContextManager:
    """Where a network runs in ``precision`` (:func:`resolve_precision`'s answer): autocast to float16 or
    bfloat16 (with oneDNN's kernels on the CPU), nothing for float32."""
    if precision == PRECISION_FLOAT16:
        return torch.autocast(device.type, dtype=torch.float16)
    if precision != PRECISION_BFLOAT16:
        return nullcontext()
    stack = ExitStack()
    stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16))
    if device.type == "cpu":
        stack.enter_context(onednn_enabled())
    return stack


def cast_products(net: torch.nn.Module, dtype: torch.dtype) -> None:
    """The weights of ``net``'s linear and convolution layers cast to ``dtype`` once, in place: the same bits
    as autocast's cast at every call, without its time (5 % of a bf16 ViT-L forward) and in half the memory.
    Normalisation layers and position embeddings keep float32, as autocast runs them."""
    for module in net.modules():
        if isinstance(module, torch.nn.Linear | torch.nn.Conv2d):
            module.to(dtype)


# mallopt parameters (glibc's malloc.h) and how much freed memory a process keeps for reuse
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
KEEP_FREED_BYTES = 1 << 30


def _glibc() -> ctypes.CDLL | None:
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """Make this process reuse the memory it frees instead of handing it back to the system at once (Linux,
    glibc; the engine's own processes call it: the CLI and the worker). Returns whether it took effect.

    glibc serves every block over 32 MB with a fresh mapping and unmaps it when freed, so each of a ViT-L
    forward's large activations arrives as new pages the kernel must fault in and zero: 1.8 million page
    faults and 3.4 s of system time per VIGOR-size float32 forward. With mappings off, one arena for all
    threads and up to ``KEEP_FREED_BYTES`` kept, the same forward faults 18,000–125,000 times (3 % faster,
    0.1–0.2 GB more peak memory: ``benchmarks/backbone_profile.py``). The numbers do not change;
    :func:`release_freed_memory` gives the kept memory back."""
    libc = _glibc()
    if libc is None:
        return False
    settings = ((_M_MMAP_MAX, 0), (_M_ARENA_MAX, 1), (_M_TRIM_THRESHOLD, KEEP_FREED_BYTES))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)


def release_freed_memory() -> None:
    """Hand the freed memory :func:`keep_freed_memory` kept back to the system (a worker between jobs)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


# torch.backends.cpu.get_cpu_capability() → the MKL code branch pinned by strict CNR mode
_CBWR_BRANCH = {"AVX512": "AVX512", "AVX2": "AVX2"}


def make_cpu_reproducible() -> None:
    """Make CPU inference results independent of the thread count (idempotent; see the module docstring).

    Sets ``MKL_CBWR`` to ``AVX512,STRICT`` or ``AVX2,STRICT`` from torch's CPU capability unless it is
    already set (takes effect only if MKL has not run yet in this process), and disables oneDNN
    (``torch.backends.mkldnn.enabled = False``) for the whole process.
    """
    if "MKL_CBWR" not in os.environ:
        branch = _CBWR_BRANCH.get(torch.backends.cpu.get_cpu_capability())
        if branch is not None:
            os.environ["MKL_CBWR"] = f"{branch},STRICT"
    torch.backends.mkldnn.enabled = False


SUM_BLOCK = 4096  # entries summed per block by :func:`fixed_order_sum`


def fixed_order_sum(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x.sum(-1, dtype=dtype)`` in an order that does not depend on the thread count.

    torch splits a reduction to a single number (a 1-D tensor, or one row) across threads once it has
    32,768 entries or more, and each thread's partial sum rounds differently; a reduction with several
    outputs is split between the outputs only, each summed whole by one thread. So the last dimension is
    summed in blocks of ``SUM_BLOCK`` (one output per block), then the block sums the same way, until one
    block is left.
    """
    n = x.shape[-1]
    if n <= SUM_BLOCK:
        return x.sum(-1, dtype=dtype)
    full = n - n % SUM_BLOCK
    parts = x[..., :full].unflatten(-1, (full // SUM_BLOCK, SUM_BLOCK)).sum(-1, dtype=dtype)
    if full < n:
        parts = torch.cat([parts, x[..., full:].sum(-1, keepdim=True, dtype=dtype)], dim=-1)
    return fixed_order_sum(parts)
