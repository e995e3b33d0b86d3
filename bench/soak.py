"""Soak (issue 20): many concurrent streams against one daemon for minutes, watching for leaks and
collapses.

The script starts ``mullama serve --headless`` with the bundled test model on a free loopback port
(its own temporary home, default settings unless given), then runs ``--streams`` clients for
``--minutes``. Each client loops: a streaming ``/v1/chat/completions`` request with a prompt drawn
from a fixed set, ``max_tokens`` between 16 and 128, temperature 0 or 0.7, and, every third
request, a second turn on the conversation it just had (so the prompt cache is exercised). A client
waits at most ``--timeout`` seconds for any byte and ``--request-timeout`` (120) for the whole
request before it counts a timeout; requests still running at the end are abandoned.

Every ``--window`` seconds it samples the daemon's resident memory (the process and its children)
and counts the tokens, requests and errors of that window, so a collapse (windows with no
progress) or a leak (RSS that keeps growing) shows up in the timeline. The report gives errors by
kind, time to first token and request latency percentiles, aggregate tokens/s (whole run and the
median and min-max over the windows) and RSS at start, peak and end.

    .venv/bin/python bench/soak.py                       # 32 streams, 5 minutes
    .venv/bin/python bench/soak.py --streams 32 --minutes 3 --out soak.json

Options: ``--streams N``, ``--minutes M``, ``--timeout S``, ``--request-timeout S``, ``--window S``, ``--parallel N``
(slots; default: the daemon's automatic choice), ``--threads N``, ``--out FILE.json``, and
``--mullama-args "..."`` passed to ``serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import PROMPTS, Server, free_port, mullama_env, pct, test_model

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Window:
    t: float
    rss_mb: float
    tokens: int = 0
    requests: int = 0
    errors: int = 0


@dataclass
class Tally:
    ttft: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    tokens: int = 0
    requests: int = 0
    window_tokens: int = 0
    window_requests: int = 0
    window_errors: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.window_errors += 1


def start_daemon(args, work: Path) -> Server:
    port = free_port()
    env = mullama_env(work / "home")
    argv = [sys.executable, "-m", "mullama", "serve", "--headless", "--http-port", str(port)]
    argv += ["--model", test_model()]
    if args.parallel:
        env["MULLAMA_NUM_PARALLEL"] = str(args.parallel)
    if args.threads:
        argv += ["--threads", str(args.threads)]
    argv += shlex.split(args.mullama_args)
    server = Server("mullama", argv, env, port, work / "mullama.log", ROOT, test_model())
    server.start(timeout=180)
    return server


def tree_rss_mb(pid: int) -> float:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


async def one_turn(
    client: httpx.AsyncClient,
    server: Server,
    messages: list[dict],
    rng: random.Random,
    tally: Tally,
) -> str | None:
    body = {
        "model": server.model_id,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": rng.randint(16, 128),
        "temperature": rng.choice([0.0, 0.7]),
    }
    sent = time.perf_counter()
    first = None
    parts: list[str] = []
    try:
        async with client.stream("POST", server.base + "/v1/chat/completions", json=body) as r:
            if r.status_code != 200:
                tally.error(f"HTTP {r.status_code}")
                await r.aread()
                return None
            async for line in r.aiter_lines():
                if not line.startswith("data:") or line.endswith("[DONE]"):
                    continue
                chunk = json.loads(line[5:])
                if chunk.get("error"):
                    tally.error("stream error: " + str(chunk["error"].get("message", ""))[:60])
                    return None
                if chunk.get("usage"):
                    tally.tokens += chunk["usage"]["completion_tokens"]
                    tally.window_tokens += chunk["usage"]["completion_tokens"]
                for choice in chunk.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        first = first or time.perf_counter()
                        parts.append(text)
    except httpx.TimeoutException:
        tally.error("client timeout")
        return None
    except (httpx.HTTPError, json.JSONDecodeError, KeyError) as exc:
        tally.error(type(exc).__name__)
        return None
    done = time.perf_counter()
    tally.requests += 1
    tally.window_requests += 1
    tally.latency.append(done - sent)
    if first is not None:
        tally.ttft.append(first - sent)
    return "".join(parts)


async def client_loop(index: int, server: Server, args, deadline: float, tally: Tally) -> None:
    rng = random.Random(1000 + index)
    timeout = httpx.Timeout(args.timeout, connect=10)
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            prompt = f"[client {index}, request {n}] {rng.choice(PROMPTS)}"
            messages = [{"role": "user", "content": prompt}]
            reply = await bounded_turn(client, server, messages, rng, tally, args)
            if reply is not None and n % 3 == 0 and time.monotonic() < deadline:
                messages += [
                    {"role": "assistant", "content": reply},
                    {"role": "user", "content": "Go on, in one more paragraph."},
                ]
                await bounded_turn(client, server, messages, rng, tally, args)


async def bounded_turn(client, server, messages, rng, tally, args) -> str | None:
    """One turn that gives up after ``--request-timeout`` seconds in all, as a client with a
    deadline does (keep-alives reset a read timeout, so ``--timeout`` alone never fires)."""
    try:
        async with asyncio.timeout(args.request_timeout):
            return await one_turn(client, server, messages, rng, tally)
    except TimeoutError:
        tally.error(f"request over {args.request_timeout:.0f} s")
        return None


async def sampler(server: Server, args, deadline: float, tally: Tally, out: list[Window]) -> None:
    assert server.proc is not None
    start = time.monotonic()
    out.append(Window(0.0, tree_rss_mb(server.proc.pid)))
    while time.monotonic() < deadline:
        await asyncio.sleep(args.window)
        window = Window(
            time.monotonic() - start,
            tree_rss_mb(server.proc.pid),
            tally.window_tokens,
            tally.window_requests,
            tally.window_errors,
        )
        tally.window_tokens = tally.window_requests = tally.window_errors = 0
        out.append(window)
        print(
            f"  t={window.t:6.0f}s rss={window.rss_mb:7.1f} MB "
            f"tok/s={window.tokens / args.window:6.1f} done={window.requests:3d} "
            f"errors={window.errors}",
            flush=True,
        )


async def soak(server: Server, args) -> dict:
    tally = Tally()
    windows: list[Window] = []
    started = time.monotonic()
    deadline = started + args.minutes * 60
    clients = [
        asyncio.ensure_future(client_loop(i, server, args, deadline, tally))
        for i in range(args.streams)
    ]
    await sampler(server, args, deadline, tally, windows)
    for task in clients:  # requests still running at the deadline are abandoned, not counted
        task.cancel()
    await asyncio.gather(*clients, return_exceptions=True)
    elapsed = time.monotonic() - started
    rates = [w.tokens / args.window for w in windows[1:]]
    return {
        "streams": args.streams,
        "minutes": args.minutes,
        "elapsed_s": round(elapsed, 1),
        "requests_ok": tally.requests,
        "abandoned_at_deadline": sum(1 for task in clients if task.cancelled()),
        "errors": tally.errors,
        "tokens": tally.tokens,
        "tok_s": round(tally.tokens / elapsed, 1),
        "window_tok_s_median": round(statistics.median(rates), 1) if rates else None,
        "window_tok_s_min": round(min(rates), 1) if rates else None,
        "window_tok_s_max": round(max(rates), 1) if rates else None,
        "windows_without_progress": sum(1 for w in windows[1:] if w.requests == 0),
        "ttft_s": {q: _round(pct(tally.ttft, v)) for q, v in PCTS.items()},
        "latency_s": {q: _round(pct(tally.latency, v)) for q, v in PCTS.items()},
        "rss_mb": {
            "start": round(windows[0].rss_mb, 1),
            "peak": round(max(w.rss_mb for w in windows), 1),
            "end": round(windows[-1].rss_mb, 1),
        },
        "timeline": [w.__dict__ for w in windows],
    }


PCTS = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--request-timeout", type=float, default=120)
    parser.add_argument("--window", type=float, default=10)
    parser.add_argument("--parallel", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--mullama-args", default="")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mullama-soak-") as tmp:
        server = start_daemon(args, Path(tmp))
        try:
            print(f"soak: {args.streams} streams for {args.minutes} min on {server.base}")
            result = asyncio.run(soak(server, args))
            with httpx.Client(trust_env=False, timeout=10) as client:
                result["alive_after"] = client.get(server.base + "/health").status_code == 200
        finally:
            server.stop()
    timeline = result.pop("timeline")
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps({**result, "timeline": timeline}, indent=2))
    return 0 if result["alive_after"] and not result["errors"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
