"""The machine a figure was measured on: CPU model, the instruction-set flags that decide INT8
speed, cores and threads, package versions. One place, used by ``make bench``, the notebooks'
timing sentences and ``build/results.json``."""

from __future__ import annotations

import os
import platform
from functools import lru_cache

# The x86 flags that decide which INT8/float kernels XNNPACK and oneDNN can pick (from /proc/cpuinfo):
# AVX-512 with VNNI (8-bit dot products, 512-bit), AVX-VNNI (the same on 256 bits), AMX (tile matrix
# units), and AVX-512 FP16.
ISA_FLAGS: tuple[str, ...] = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_fp16")

# Python packages whose version changes the workbook's numbers.
PACKAGES: tuple[str, ...] = ("tensorflow", "keras", "ai-edge-litert", "numpy", "tensorflow-hub", "papermill")


@lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset]:
    """The first processor's ``model name`` and ``flags`` (every core of one machine has the same)."""
    model, flags = None, None
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model is None:
                    model = value.strip()
                elif key.strip() == "flags" and flags is None:
                    flags = frozenset(value.split())
    except OSError:
        pass
    return model or platform.processor() or "unknown CPU", flags or frozenset()


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (``/proc/cpuinfo``)."""
    return _cpuinfo()[0]


def isa_flags() -> dict[str, bool]:
    """Which of :data:`ISA_FLAGS` this CPU has."""
    flags = _cpuinfo()[1]
    return {flag: flag in flags for flag in ISA_FLAGS}


def cores() -> int:
    """The cores this process may run on (its affinity), which is what the benchmarks use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def describe() -> str:
    """One line: ``Intel(R) Xeon(R) ..., 2 cores; avx512_vnni yes, avx_vnni yes, amx_int8 yes, ...``."""
    flags = ", ".join(f"{flag} {'yes' if present else 'no'}" for flag, present in isa_flags().items())
    return f"{cpu_model()}, {cores()} cores; {flags}"


def short() -> str:
    """The CPU for a sentence: its model name and its INT8 extensions, e.g.
    ``Intel(R) Xeon(R) Processor with AVX-512 VNNI, AVX-VNNI, AMX-INT8``."""
    flags = isa_flags()
    names = {"avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI", "amx_int8": "AMX-INT8"}
    present = [label for flag, label in names.items() if flags.get(flag)]
    return f"{cpu_model()} with {', '.join(present)}" if present else f"{cpu_model()} without VNNI or AMX"


def package_versions() -> dict[str, str | None]:
    """Installed versions of :data:`PACKAGES` (None when one is missing)."""
    from importlib import metadata

    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def summary() -> dict:
    """Everything about this machine that a recorded figure depends on, JSON-ready."""
    return {
        "cpu": cpu_model(),
        "isa_flags": isa_flags(),
        "cores": cores(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "packages": package_versions(),
    }
