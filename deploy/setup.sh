#!/usr/bin/env bash
# Idempotent installer behind `make demo` and `make test`; a second run does (almost) nothing.
#
#   deploy/setup.sh          .venv, the package with its test extras, the Kafka jars
#   deploy/setup.sh --test   also the Debian packages the tests need (PostgreSQL, Chromium)
#
# Needs python3 (3.11+), Java 17+ and Maven; run as root (or with sudo) for --test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

with_test=0
for arg in "$@"; do
    case "$arg" in
    --test) with_test=1 ;;
    *)
        echo "usage: $0 [--test]" >&2
        exit 2
        ;;
    esac
done

PYTHON="${PYTHON:-python3}"
VENV=.venv
TEST_DEBS=(postgresql chromium fonts-wqy-microhei)

say() {
    echo "setup: $*"
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "setup: need root to run: $*" >&2
        exit 1
    fi
}

deb_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

apt_install() {
    say "installing Debian packages: $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

ensure_venv() {
    if [ -x "$VENV/bin/python" ]; then
        return 0
    fi
    command -v "$PYTHON" >/dev/null || { echo "setup: $PYTHON not found" >&2; exit 1; }
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        { echo "setup: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" -V 2>&1))" >&2; exit 1; }
    # Debian's python3 lacks ensurepip until python3-venv is installed.
    if ! "$PYTHON" -c 'import ensurepip' 2>/dev/null && command -v apt-get >/dev/null; then
        apt_install python3-venv
    fi
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
}

ensure_python_deps() {
    local stamp="$VENV/.clearing-deps.sha256" want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    say "installing the package and its test extras into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
    echo "$want" >"$stamp"
}

ensure_test_debs() {
    local missing=() pkg
    for pkg in "${TEST_DEBS[@]}"; do
        deb_installed "$pkg" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
}

ensure_venv
ensure_python_deps
deploy/kafka.sh fetch
if [ "$with_test" -eq 1 ]; then
    ensure_test_debs
fi
say "ready"
