#!/usr/bin/env bash
# Installs a Synapse homeserver (`matrix-synapse` from PyPI) into a virtual
# environment for the notify crate's Matrix tests, when it is not there yet.
#
# Where: $RETORT_SYNAPSE_VENV, else $CARGO_TARGET_DIR/synapse-venv, else
# target/synapse-venv at the workspace root (what the tests look for).
# Needs: python3 (3.9 or newer) with its venv module; network access to PyPI.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
venv="${RETORT_SYNAPSE_VENV:-${CARGO_TARGET_DIR:-$root/target}/synapse-venv}"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import synapse' 2>/dev/null; then
  echo "synapse: already installed in $venv ($("$venv/bin/python" -c 'import synapse; print(synapse.__version__)'))"
  exit 0
fi

python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null; then
  echo "synapse: $python not found; install Python 3 with its venv module (apt-get install python3-venv)" >&2
  exit 1
fi
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet matrix-synapse
echo "synapse: installed in $venv ($("$venv/bin/python" -c 'import synapse; print(synapse.__version__)'))"
