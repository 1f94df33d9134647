#!/bin/sh
# Creates (once) a Python venv with python-hcl2 from PyPI, for the Nomad
# tests to parse generated jobs back. Usage: install.sh VENV_DIR
# Prints the venv's python path on success.
set -eu
venv=${1:?usage: install.sh VENV_DIR}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import hcl2' 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'python-hcl2>=4,<8' >&2
fi
echo "$venv/bin/python"
