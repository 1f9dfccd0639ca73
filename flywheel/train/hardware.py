"""What the training machine can do: CUDA, bf16, 4-bit QLoRA, and how many CPU threads to use.

Detected at call time (never at import), so the same config trains on a laptop CPU in fp32 and on a
GPU in bf16/QLoRA without edits; a request the hardware cannot honour degrades with a note instead
of crashing.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any

THREADS_ENV = "FLYWHEEL_TORCH_THREADS"


@dataclass(frozen=True)
class Hardware:
    device: str
    bf16: bool
    qlora: bool
    threads: int
    gpu_name: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"

    def as_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "bf16": self.bf16,
            "qlora": self.qlora,
            "threads": self.threads,
            "gpu_name": self.gpu_name,
        }


def cpu_threads(environ: dict[str, str] | None = None, load: float | None = None) -> int:
    """Threads for torch: FLYWHEEL_TORCH_THREADS, else the CPUs this process may use minus the ones
    other processes keep busy right now.

    Why not always every CPU: OpenMP threads spin at barriers, so on an oversubscribed machine 2
    threads on 2 busy cores ran MiniLM training 3-4x slower than 1 thread (measured here, load ~5).
    "Busy right now" is the runnable count of /proc/loadavg (minus this thread) sampled over 0.1 s,
    not the 1-minute load average: that one counts this process's own recent work (curation, the
    previous candidate) as another's, and gave a quiet machine's demo 1 thread of 2.
    """
    environ = os.environ if environ is None else environ
    override = environ.get(THREADS_ENV, "").strip()
    if override:
        try:
            return max(1, int(override))
        except ValueError as exc:
            raise ValueError(f"{THREADS_ENV}={override!r} is not an integer") from exc
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    if load is None:
        load = others_running()
    return max(1, min(cpus, round(cpus - load)))


def others_running(samples: int = 10, interval_s: float = 0.01) -> float:
    """Runnable threads of other work right now: the median of /proc/loadavg's running count minus
    the thread reading it; the 1-minute load average where /proc is missing."""
    import statistics
    import time

    counts = []
    for _ in range(samples):
        try:
            with open("/proc/loadavg") as handle:
                counts.append(int(handle.read().split()[3].split("/")[0]) - 1)
        except (OSError, IndexError, ValueError):
            try:
                return os.getloadavg()[0]
            except OSError:
                return 0.0
        time.sleep(interval_s)
    return max(0.0, statistics.median(counts))


def configure_threads(environ: dict[str, str] | None = None) -> int:
    import torch

    threads = cpu_threads(environ)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def detect_hardware(environ: dict[str, str] | None = None) -> Hardware:
    import torch

    threads = configure_threads(environ)
    if not torch.cuda.is_available():
        return Hardware(device="cpu", bf16=False, qlora=False, threads=threads)
    bf16 = bool(torch.cuda.is_bf16_supported())
    qlora = importlib.util.find_spec("bitsandbytes") is not None
    notes = () if qlora else ("bitsandbytes not installed: QLoRA falls back to LoRA",)
    return Hardware("cuda", bf16, qlora, threads, torch.cuda.get_device_name(0), notes)


def precision_args(hardware: Hardware) -> dict[str, Any]:
    """TrainingArguments fields for the hardware (TRL defaults to bf16=True, which fails on CPU)."""
    return {"bf16": hardware.bf16, "fp16": False, "use_cpu": not hardware.cuda}


def quantization_config(hardware: Hardware, requested: bool) -> Any | None:
    """A 4-bit BitsAndBytesConfig when QLoRA is requested and possible (CUDA + bitsandbytes), else None."""
    if not requested or not hardware.qlora:
        return None
    import torch
    from transformers import BitsAndBytesConfig

    compute_dtype = torch.bfloat16 if hardware.bf16 else torch.float16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )
