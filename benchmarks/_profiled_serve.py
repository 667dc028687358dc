"""``daisi serve`` under cProfile with a CPU clock, switched on and off by signals.

Used by ``cpu_profile.py``: ``SIGUSR1`` starts profiling the server's main thread (the event
loop: HTTP, engine, store), ``SIGUSR2`` stops it and writes the stats to the file named
first; startup and shutdown stay out of the profile.

    python benchmarks/_profiled_serve.py OUT.prof serve DIR --port 0 ...
"""

from __future__ import annotations

import cProfile
import os
import runpy
import signal
import sys
import time
from types import FrameType


def main() -> None:
    out = sys.argv[1]
    sys.argv = ["daisi", *sys.argv[2:]]
    # CPU time of the main thread: time spent waiting (epoll) or preempted is not counted.
    profile = cProfile.Profile(time.thread_time)

    def start(signum: int, frame: FrameType | None) -> None:
        profile.enable()

    def stop(signum: int, frame: FrameType | None) -> None:
        profile.disable()
        profile.dump_stats(out + ".part")
        os.replace(out + ".part", out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    runpy.run_module("daisi_async", run_name="__main__")


if __name__ == "__main__":
    main()
