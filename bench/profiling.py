"""Sampling profiles of the stack's processes under load (`make profile`, `--profile`).

py-spy attaches to a running process from outside (no change to the code profiled) and
samples its Python stacks; `--nonblocking` reads them without pausing the process, so the
profiled numbers stay close to the unprofiled ones. Each cell of the bench gets one file per
process in py-spy's raw format (collapsed stacks: `frame;frame;... count`, one line per
distinct stack), which speedscope and flamegraph.pl read as they are, and the report lists
each scenario's heaviest frames.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import stack

PY_SPY = stack.BIN / "py-spy"
RATE = 250  # samples per second per process


@dataclass
class Recording:
    name: str
    path: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """py-spy writes its file when interrupted, as on Ctrl-C."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def record(pid: int, name: str, path: Path) -> Recording:
    path.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            str(PY_SPY),
            "record",
            f"--pid={pid}",
            "--format=raw",
            "--function",  # one frame per function, not per line
            "--nonblocking",
            f"--rate={RATE}",
            f"--output={path}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Recording(name, path, process)


@dataclass(frozen=True)
class Frame:
    name: str  # "function (module/file.py)"
    self_share: float  # of all samples, the share with this frame on top
    total_share: float  # of all samples, the share with this frame anywhere on the stack


def heaviest(paths: list[Path], top: int = 10) -> tuple[int, list[Frame]]:
    """The `top` frames by self time over the files in `paths` (one process's or several's
    samples, added up), and the number of samples."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    samples = 0
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack_text, _, count_text = line.rpartition(" ")
            if not stack_text or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_frame_name(frame) for frame in stack_text.split(";")]
            samples += count
            own[frames[-1]] += count
            for name in set(frames):
                anywhere[name] += count
    if not samples:
        return 0, []
    return samples, [
        Frame(name, count / samples, anywhere[name] / samples)
        for name, count in own.most_common(top)
    ]


def _frame_name(frame: str) -> str:
    """`func (path/to/module.py:12)` -> `func (path/to/module.py)`."""
    head, _, location = frame.partition(" (")
    return f"{head} ({location.rsplit(':', 1)[0].rstrip(')')})" if location else head


def render(profiles: dict[str, dict[str, list[Path]]], folder: Path) -> list[str]:
    """Markdown: for each cell, each process's ten heaviest frames by self time."""
    lines = [
        f"Sampled with py-spy at {RATE} Hz, without pausing the processes; the raw profiles "
        f"are in `{folder}`. Self = samples with the frame on top; total = with it anywhere "
        "on the stack (idle waits are not sampled).",
    ]
    for cell, processes in profiles.items():
        for process, paths in processes.items():
            samples, frames = heaviest(paths)
            lines += [
                "",
                f"**{cell}, {process}** ({samples:,} samples)",
                "",
                "| frame | self | total |",
                "|---|---:|---:|",
            ]
            lines += [
                f"| `{frame.name}` | {100 * frame.self_share:.1f} % | "
                f"{100 * frame.total_share:.1f} % |"
                for frame in frames
            ]
    return lines
