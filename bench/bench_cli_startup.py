"""CLI start-up: wall time of read-only commands against a running daemon.

Starts a daemon in a temporary directory (no models needed), then runs each command
``--runs`` times as a fresh process, the way a user or a script would, and reports
min / median / p90 wall-clock time next to a bare ``python -c pass`` for scale.
Target: ``mullama list`` under 300 ms.

    python bench/bench_cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import settings_env  # noqa: E402

TARGET_MS = 300
COMMANDS = [["list"], ["list", "--json"], ["ps"], ["daemon", "status"]]


def mullama_program() -> list[str]:
    script = Path(sys.executable).parent / "mullama"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mullama"]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one run; CPU time (user + system) is what a busy machine inflates least."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - started) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)} failed with {proc.returncode}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def summary(samples: list[tuple[float, float]]) -> str:
    walls = sorted(w for w, _ in samples)
    p90 = walls[min(len(walls) - 1, int(len(walls) * 0.9))]
    cpu = statistics.median(c for _, c in samples)
    return f"{walls[0]:7.0f} {statistics.median(walls):7.0f} {p90:7.0f} {cpu:7.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    program = mullama_program()
    with tempfile.TemporaryDirectory(prefix="mullama-bench-") as tmp:
        env = {**os.environ, **settings_env(Path(tmp))}
        # as installed by pip: bytecode cached (kept out of the source tree here)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        subprocess.run(
            program + ["daemon", "start"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            print(
                f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, {args.runs} runs each"
            )
            print(f"{'command':<28} {'min':>7} {'median':>7} {'p90':>7} {'cpu':>7}  (ms)")
            timed(program + ["list"], env)  # writes the bytecode cache
            baseline = [timed([sys.executable, "-c", "pass"], env) for _ in range(args.runs)]
            print(f"{'python -c pass':<28} {summary(baseline)}")
            results = {}
            for command in COMMANDS:
                samples = [timed(program + command, env) for _ in range(args.runs)]
                results[" ".join(command)] = samples
                print(f"{'mullama ' + ' '.join(command):<28} {summary(samples)}")
        finally:
            subprocess.run(
                program + ["daemon", "stop"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
    median = statistics.median(w for w, _ in results["list"])
    verdict = "PASS" if median < TARGET_MS else "FAIL"
    print(f"{verdict}: median `mullama list` {median:.0f} ms (target < {TARGET_MS} ms)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
