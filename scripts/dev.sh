#!/usr/bin/env bash
# Development entry point: sets everything up on a fresh clone, then runs the daemon or the tests.
#   scripts/dev.sh run    set up, then run the daemon on config.example.toml (in/ and out/ here)
#   scripts/dev.sh test   set up, then run the whole test suite (what CI runs)
#   scripts/dev.sh test --fast  the edit loop: ruff and the tests not marked slow (no subprocess
#                         daemons, model processes, floods, fault injection or browser)
#   scripts/dev.sh setup  only set up
# Arguments after `test` / `test --fast` go to pytest. pytest collecting no tests is a failure.
# Env: VENV (default .venv), TORCH_SPEC (default torch==2.13.0, the CPU build on these machines;
# a GPU workstation sets e.g. TORCH_SPEC=torch to get the CUDA build), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

# Debian packages the tests use, installed when missing and we may (root with apt-get):
# systemd (systemd-analyze verifies the unit), chromium (the report and the studio page render in a real browser)
# and postgresql (the job-log tests start a throw-away server: initdb, pg_ctl, a unix socket).
system_packages() {
    local missing=()
    command -v systemd-analyze >/dev/null || missing+=(systemd)
    command -v chromium >/dev/null || missing+=(chromium)
    command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 \
        || missing+=(postgresql)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing ${missing[*]} (for the tests)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "warning: ${missing[*]} missing; the tests that need them will skip" >&2
    fi
}

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
    "$VENV/bin/python" -m pip install -q -e ".[bshm,dev,heic,postgres]"
    echo "$want" > "$stamp"
}

case "${1:-}" in
    setup)
        setup
        ;;
    run)
        setup
        mkdir -p in out
        if [ "$(id -u)" = 0 ]; then
            # A developer's root container: the service itself runs as its own user.
            echo "warning: running as root (MATTECTL_ALLOW_ROOT=1); the systemd unit never does" >&2
            export MATTECTL_ALLOW_ROOT=1
        fi
        echo "drop photos into $(pwd)/in; cutouts appear in $(pwd)/out (Ctrl-C stops)" >&2
        exec "$VENV/bin/mattectl" run --config config.example.toml
        ;;
    test)
        shift
        select=()
        if [ "${1:-}" = --fast ]; then
            shift
            select=(-m "not slow")
        fi
        setup
        # The tests that need the system packages (the browser) are all marked slow.
        [ ${#select[@]} -gt 0 ] || system_packages
        "$VENV/bin/ruff" check daemon tests
        rc=0
        "$VENV/bin/python" -m pytest ${select[@]+"${select[@]}"} "$@" || rc=$?
        if [ "$rc" -eq 5 ]; then
            # pytest's "no tests collected": a wrong path or -k/-m must not pass as green.
            echo "error: pytest collected no tests (exit code 5)" >&2
            exit 1
        fi
        exit "$rc"
        ;;
    *)
        sed -n '2,10p' "$0" >&2
        exit 2
        ;;
esac
