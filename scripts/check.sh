#!/usr/bin/env bash
# The static checks CI makes before the tests: format, lint, import contracts, types.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin
"$py"/ruff format --check --quiet .
"$py"/ruff check --quiet .
"$py"/lint-imports --no-cache >/dev/null || "$py"/lint-imports --no-cache
"$py"/mypy
echo "checks passed: ruff format, ruff check, import contracts, mypy"
