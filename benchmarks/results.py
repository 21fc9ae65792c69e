"""Write one named section of ``benchmarks/RESULTS.md``, leaving the other benchmarks' sections alone."""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nEach section is written by the script it names; rerun the command to refresh it.\n"


# The instruction sets that change which CPU kernels torch runs (and so a seeded run's path).
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_flags() -> set[str]:
    """The flags of the first CPU in /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine_line() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    flags = cpu_flags()
    return (
        f"{cpu}, {os.cpu_count()} cores (flags: {', '.join(f for f in CPU_FLAGS if f in flags) or 'none of ' + '/'.join(CPU_FLAGS)}; "
        f"ATen kernels {torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {device}, Python {platform.python_version()}"
    )


def invocation() -> list[str]:
    """How the running benchmark was started: ``-m benchmarks.NAME``, or the script's path."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return ["-m", spec.name] if spec is not None and spec.name else [os.path.relpath(sys.argv[0])]


def write_section(name: str, body: str, title: str | None = None, path: Path = RESULTS) -> Path:
    """Replace (or append) the section ``name`` of ``path`` with ``body``, stamped with command, machine and date."""
    command = "python " + " ".join(shlex.quote(a) for a in [*invocation(), *sys.argv[1:]])
    stamp = (
        f"Command: `{command}`  \nMachine: {machine_line()}  \n"
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
    )
    block = f"<!-- BEGIN {name} -->\n## {title or name}\n\n{stamp}\n{body.strip()}\n<!-- END {name} -->\n"
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->\n?", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    path.write_text(text)
    return path
