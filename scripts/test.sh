#!/usr/bin/env bash
# README's second command and CI's suite (.ci/run calls this, so the two never drift apart): install what
# the tests need into .venv/ with the pins the images ship (docker/image-constraints.txt), then the house
# rules' checks (ruff lint and format, mypy, the import-layer contracts, the images' locks current) and the
# whole test suite.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh --fast     # the fast lane: the same, without the tests marked slow
#   bash scripts/test.sh -- ARGS    # ARGS passed on to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
pytest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --fast) pytest_args+=(-m "not slow") ;;
        --) shift; pytest_args+=("$@"); break ;;
        *) echo "usage: bash scripts/test.sh [--fast] [-- PYTEST_ARGS...]" >&2; exit 2 ;;
    esac
    shift
done
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -c constraints.txt -c docker/image-constraints.txt -e '.[test]'
.venv/bin/ruff check
.venv/bin/ruff format --check
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python docker/pin_image_deps.py --check
exec .venv/bin/python -m pytest "${pytest_args[@]}"
