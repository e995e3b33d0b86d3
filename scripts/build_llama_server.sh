#!/usr/bin/env bash
# Build llama.cpp's `llama-server` for the serving benchmark (bench/bench_serving.py, issue 9).
#
# The source is the `vendor/llama.cpp` tree of the llama-cpp-python source distribution on PyPI,
# at the same version as the one installed in .venv, so both servers run the same llama.cpp.
# Everything lives in a cache dir outside the repo (nothing third-party is ever committed):
#   ${MULLAMA_BENCH_CACHE:-~/.cache/mullama-bench}/llama-server      the binary
#   ${MULLAMA_BENCH_CACHE:-~/.cache/mullama-bench}/src/              sdist + build tree
# Skips everything when the binary is already there (pass --force to rebuild).
# Prints the binary's path on its last line of stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${MULLAMA_BENCH_CACHE:-$HOME/.cache/mullama-bench}
bin="$cache/llama-server"
py=${PYTHON:-.venv/bin/python}
jobs=${JOBS:-$(nproc)}

if [ "${1:-}" != "--force" ] && [ -x "$bin" ]; then
    echo "$bin"
    exit 0
fi

version=${LLAMA_CPP_PYTHON_VERSION:-$("$py" -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))')}
src="$cache/src"
mkdir -p "$src"
sdist=$(ls "$src"/llama_cpp_python-"$version".tar.gz 2>/dev/null || true)
if [ -z "$sdist" ]; then
    echo "downloading llama-cpp-python $version source distribution" >&2
    # --no-binary for llama-cpp-python only: with :all: pip would build every build dependency
    # (scikit-build-core, hatchling, ...) from source too, recursively, just to read the metadata
    "$py" -m pip download -q --no-deps --no-binary llama-cpp-python "llama-cpp-python==$version" -d "$src" >&2
    sdist=$(ls "$src"/llama_cpp_python-"$version".tar.gz)
fi
tree="$src/llama_cpp_python-$version"
[ -d "$tree/vendor/llama.cpp" ] || tar -xzf "$sdist" -C "$src"

llama="$tree/vendor/llama.cpp"
build="$llama/build"
echo "building llama-server from $llama ($jobs jobs)" >&2
cmake -S "$llama" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_CURL=OFF -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF >&2
cmake --build "$build" --target llama-server -j "$jobs" >&2

tmp="$bin.tmp.$$"
cp "$build/bin/llama-server" "$tmp"
mv "$tmp" "$bin"
echo "$version" > "$cache/llama-server.version"
echo "$bin"
