"""The box's own pauses: a process that only sleeps 5 ms at a time, and how late it wakes.

A fan-out's worst case on a shared or virtual machine can be the machine's, not the
server's: when the hypervisor or other work holds the CPUs, every process waits alike. This
probe runs beside a measurement (`Stalls`) and reports each wake-up more than 10 ms late, and
the CPU time the hypervisor stole meanwhile (/proc/stat), so a slow action can be set beside
a pause of the box itself.

    python -m bench.stalls --seconds 10
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

LATE_MS = 10.0
NAP = 0.005


def stolen_ticks() -> int:
    """CPU time stolen by the hypervisor from this machine so far, in clock ticks (/proc/stat's eighth field)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) if len(fields) > 8 else 0


def watch(seconds: float, late: list[tuple[float, float]]) -> None:
    """Nap until `seconds` have passed (or an interrupt), noting each late wake-up: (when, ms late)."""
    end = time.perf_counter() + seconds
    while (start := time.perf_counter()) < end:
        time.sleep(NAP)
        over = (time.perf_counter() - start - NAP) * 1000
        if over > LATE_MS:
            late.append((start, round(over, 1)))


@dataclass
class Stalls:
    """Run the probe (its own process) for the length of a `with` block."""

    late_ms: list[float] = field(default_factory=list)
    stolen_ticks: int = 0

    def __enter__(self) -> Stalls:
        self.process = subprocess.Popen([sys.executable, "-m", "bench.stalls", "--seconds", "3600", "--json"],
                                        cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *_: object) -> None:
        self.process.send_signal(2)  # SIGINT: it prints what it saw and ends
        out, _ = self.process.communicate(timeout=30)
        seen = json.loads(out or "{}")
        self.late_ms = [over for _, over in seen.get("late", [])]
        self.stolen_ticks = seen.get("stolen_ticks", 0)

    def summary(self) -> str:
        worst = max(self.late_ms, default=0.0)
        return (f"{len(self.late_ms)} wake-ups over {LATE_MS:.0f} ms late, the worst {worst:.1f} ms; "
                f"{self.stolen_ticks} ticks stolen")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stalls", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--json", action="store_true", help="print JSON (what Stalls reads)")
    args = parser.parse_args()
    late: list[tuple[float, float]] = []
    stolen = stolen_ticks()
    try:
        watch(args.seconds, late)
    except KeyboardInterrupt:
        pass
    stolen = stolen_ticks() - stolen
    if args.json:
        print(json.dumps({"late": late, "stolen_ticks": stolen}))
    else:
        print(f"{len(late)} wake-ups over {LATE_MS:.0f} ms late: {sorted(o for _, o in late)[-10:]} ms (worst last); "
              f"{stolen} ticks stolen")


if __name__ == "__main__":
    main()
