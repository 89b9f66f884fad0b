"""Run `topup ...` under cProfile and write the stats when it stops (`python -m bench.run --cprofile`).

    python -m bench.cprofile_child OUT.pstats serve --port 8080

uvicorn re-raises SIGTERM after its graceful shutdown; the handler installed here turns that into
SystemExit, so the stats are written instead of the process dying with them.
"""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys
from typing import Any


def _exit(*_: Any) -> None:
    raise SystemExit(0)


def main() -> None:
    out = sys.argv[1]
    sys.argv = ["topup", *sys.argv[2:]]
    signal.signal(signal.SIGTERM, _exit)
    prof = cProfile.Profile()
    prof.enable()
    try:
        runpy.run_module("topup.entrypoints.cli", run_name="__main__")
    except SystemExit:
        pass
    finally:
        prof.disable()
        prof.dump_stats(out)


if __name__ == "__main__":
    main()
