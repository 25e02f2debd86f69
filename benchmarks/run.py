"""Run every benchmark script in this folder (``make bench``); extra args are passed on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    status = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n=== {script.name} ===", flush=True)
        cmd = [sys.executable, str(script), *sys.argv[1:]]
        status |= subprocess.run(cmd, check=False).returncode
    return status


if __name__ == "__main__":
    raise SystemExit(main())
