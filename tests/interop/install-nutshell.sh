#!/usr/bin/env bash
# Installs Nutshell (the Python Cashu wallet, `cashu` CLI) into a virtualenv for the e2e interop
# test `interop_nutshell`.
#
#   usage: tests/interop/install-nutshell.sh [VENV_DIR]
#
# VENV_DIR defaults to <workspace>/target/nutshell-venv, where the test looks for
# bin/cashu (or set NUTSHELL_BIN to the executable). Needs Python >= 3.10 with the venv module;
# on Debian/Ubuntu, python3-venv is installed with apt-get when missing (as root or via sudo).
# Set PYTHON to choose the interpreter.
#
# Idempotent: an existing venv with the pinned cashu version is left as it is.

set -euo pipefail

# The versions the tests were written against. marshmallow 4 breaks environs 9, which cashu uses;
# limits 5 breaks the rate limiter of the Nutshell mint (the `mint` entry point), so limits<5.
CASHU_VERSION=0.20.2
MARSHMALLOW_VERSION=3.26.2

log() { echo "install-nutshell: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[ $# -le 1 ] || die "usage: $0 [VENV_DIR]"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${1:-$ROOT/target/nutshell-venv}"
PYTHON="${PYTHON:-python3}"
CASHU="$VENV/bin/cashu"

installed_version() {
    "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("cashu"))' 2>/dev/null || true
}

# Nutshell's mint fails at start-up with limits 5 ("Invalid rate limiting strategy").
limits_ok() {
    "$VENV/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(int(m.version("limits").split(".")[0]) >= 5)' 2>/dev/null
}

if [ -x "$CASHU" ] && [ "$(installed_version)" = "$CASHU_VERSION" ] && limits_ok; then
    log "cashu $CASHU_VERSION is already installed in $VENV"
    echo "NUTSHELL_BIN=$CASHU"
    exit 0
fi

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "cannot install $* without root or sudo"
    fi
}

# A fresh Debian has python3 without ensurepip (package python3-venv), or no python3 at all.
if ! command -v "$PYTHON" >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    command -v apt-get >/dev/null 2>&1 || die "$PYTHON with the venv module is required"
    log "installing python3 and python3-venv with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq >&2
    as_root apt-get install -y -qq --no-install-recommends python3 python3-venv >&2
fi
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
    die "Nutshell $CASHU_VERSION needs Python >= 3.10; $PYTHON is $("$PYTHON" --version 2>&1)"

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    log "creating a virtualenv in $VENV"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV"
fi

# Every transitive dependency pinned to what the test was run with (Python 3.11, Linux x86_64).
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
cat >"$CONSTRAINTS" <<'EOF'
aiosqlite==0.20.0
annotated-types==0.8.0
anyio==4.16.0
asn1crypto==1.5.1
asyncpg==0.30.0
base58==2.1.1
bech32==1.2.0
bip32==4.0
bitstring==3.1.9
bolt11==2.2.0
brotli==1.2.1
cbor2==5.9.0
certifi==2026.10.18
cffi==2.1.1
click==8.5.1
coincurve==20.0.0
cryptography==43.0.3
Deprecated==1.3.1
ecdsa==0.19.2
environs==9.5.0
fastapi==0.115.14
googleapis-common-protos==1.76.0
greenlet==3.5.6
grpcio==1.85.1
grpcio-tools==1.76.0
h11==0.14.0
httpcore==1.0.8
httpx==0.25.2
idna==3.20
importlib-metadata==6.11.0
Jinja2==3.1.6
limits==4.8.0
loguru==0.7.3
MarkupSafe==3.0.4
mnemonic==0.20
mypy-protobuf==3.7.0
packaging==26.3
protobuf==6.33.6
pycparser==3.12
pycryptodomex==3.24.2
pydantic==2.14.3
pydantic-settings==2.16.3
pydantic_core==2.50.4
PyJWT==2.15.1
python-dotenv==1.2.4
redis==5.3.1
setuptools==75.9.1
six==1.17.0
slowapi==0.1.10
sniffio==1.3.1
socksio==1.0.0
SQLAlchemy==2.1.9
starlette==0.46.2
types-protobuf==5.29.1.20250403
typing-inspection==0.4.5
typing_extensions==4.16.0
uvicorn==0.31.1
websocket-client==1.9.2
websockets==12.0
wheel==0.41.3
wrapt==2.5.2
zipp==4.1.2
zstandard==0.23.0
EOF

PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input)
log "installing cashu==$CASHU_VERSION marshmallow==$MARSHMALLOW_VERSION into $VENV"
if ! "${PIP[@]}" install -q -c "$CONSTRAINTS" "cashu==$CASHU_VERSION" "marshmallow==$MARSHMALLOW_VERSION" >&2; then
    # Another Python version may lack wheels for some pinned transitive dependency: keep the
    # two pins that matter and let pip resolve the rest.
    log "warning: the fully pinned set did not install; retrying with cashu, marshmallow and limits pinned only"
    "${PIP[@]}" install -q "cashu==$CASHU_VERSION" "marshmallow==$MARSHMALLOW_VERSION" 'limits<5' >&2
fi
limits_ok || die "limits>=5 got installed; Nutshell's mint needs limits<5"

[ "$(installed_version)" = "$CASHU_VERSION" ] || die "cashu $CASHU_VERSION did not install"
[ -x "$CASHU" ] || die "$CASHU is missing after the install"
log "installed cashu $CASHU_VERSION: $CASHU"
echo "NUTSHELL_BIN=$CASHU"
