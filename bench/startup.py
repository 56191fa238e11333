"""How long `digest --help` and `digest --version` take to answer, and what a real command
costs on top: the median of several runs of the installed command, each a new process.

    python bench/startup.py            # 15 runs each
    python bench/startup.py --runs 30
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = (["--help"], ["--version"], ["send", "--help"], ["status"])


def digest_command() -> list[str]:
    found = shutil.which("digest", path=str(Path(sys.executable).parent)) or shutil.which("digest")
    return [found] if found else [sys.executable, "-m", "digest.cli"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    base = digest_command()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.runs} runs")
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "DIGEST_DATABASE_URL": f"sqlite:///{folder}/bench.db"}
        subprocess.run([*base, "init"], cwd=folder, env=env, check=True, capture_output=True)
        for command in COMMANDS:
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                subprocess.run([*base, *command], cwd=folder, env=env, capture_output=True)
                times.append(time.perf_counter() - started)
            print(
                f"digest {' '.join(command):<14} median {statistics.median(times) * 1000:6.0f} ms"
                f"   min {min(times) * 1000:6.0f} ms"
            )


if __name__ == "__main__":
    main()
