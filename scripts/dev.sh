#!/usr/bin/env bash
# Development entry point: sets everything up on a fresh clone, then runs the daemon or the tests.
#   scripts/dev.sh run    set up, then run the daemon on config.example.toml (in/ and out/ here)
#   scripts/dev.sh test   set up, then run the whole test suite (what CI runs)
#   scripts/dev.sh setup  only set up
# Env: VENV (default .venv), TORCH_SPEC (default torch==2.13.0, the CPU build on these machines;
# a GPU workstation sets e.g. TORCH_SPEC=torch to get the CUDA build), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "creating $VENV" >&2
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.mattectl-setup"
    local want
    want=$(cat pyproject.toml scripts/dev.sh | sha256sum | cut -c1-16)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # torch first, so that the project's "torch>=2.3" is already met by the build chosen here.
    "$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
    "$VENV/bin/python" -m pip install -q -e ".[bshm,dev,heic]"
    echo "$want" > "$stamp"
}

case "${1:-}" in
    setup)
        setup
        ;;
    run)
        setup
        mkdir -p in out
        echo "drop photos into $(pwd)/in; cutouts appear in $(pwd)/out (Ctrl-C stops)" >&2
        exec "$VENV/bin/mattectl" run --config config.example.toml
        ;;
    test)
        setup
        shift
        "$VENV/bin/ruff" check daemon tests
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        sed -n '2,8p' "$0" >&2
        exit 2
        ;;
esac
