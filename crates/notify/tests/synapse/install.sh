#!/usr/bin/env bash
# Installs a Synapse homeserver (`matrix-synapse` from PyPI) into a virtual
# environment for the notify crate's Matrix tests, when it is not there yet.
#
# Where: $RETORT_SYNAPSE_VENV, else $CARGO_TARGET_DIR/synapse-venv, else
# target/synapse-venv at the workspace root (what the tests look for).
# Version: $SYNAPSE_VERSION, else the one the tests were written against.
# Needs: python3 (3.9 or newer) with its venv module; network access to PyPI.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../../.." && pwd)"
venv="${RETORT_SYNAPSE_VENV:-${CARGO_TARGET_DIR:-$root/target}/synapse-venv}"
version="${SYNAPSE_VERSION:-1.163.2}"
installed() { "$venv/bin/python" -c 'from importlib.metadata import version; print(version("matrix-synapse"))'; }

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import synapse' 2>/dev/null; then
  echo "synapse: already installed in $venv ($(installed))"
  exit 0
fi

python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null || ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  # Debian and Ubuntu ship the venv module (with ensurepip) apart.
  if command -v apt-get >/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update && $sudo apt-get install -y python3 python3-venv
  fi
fi
if ! command -v "$python" >/dev/null; then
  echo "synapse: $python not found; install Python 3 (3.9 or newer) with its venv module (apt-get install python3-venv)" >&2
  exit 1
fi
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "matrix-synapse==$version"
echo "synapse: installed in $venv ($(installed))"
