#!/usr/bin/env bash
# Installs the Claude Code CLI that the real-agent tests (retort-testkit) drive,
# pinned by tests/claude-code/package-lock.json, into target/claude-code/.
#
# - Installs Debian's nodejs and npm when node or npm is missing (as root, or
#   through sudo).
# - `npm ci` into target/claude-code/ (a copy of package.json and the lock file
#   lives there), then runs the package's install.cjs, which puts the native
#   binary (~245 MB, from the optional package for this platform) over
#   bin/claude.exe; npm does not always run that postinstall by itself.
# - Idempotent: when the installed CLI already prints the pinned version and
#   the lock file is unchanged, it only prints the version.
#
# Prints the CLI's version last, e.g. `2.1.197 (Claude Code)`.
# The tests find the CLI at target/claude-code/node_modules/.bin/claude,
# or at $RETORT_CLAUDE_BIN when that is set.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dest="${CARGO_TARGET_DIR:-$root/target}/claude-code"
bin="$dest/node_modules/.bin/claude"
package="$dest/node_modules/@anthropic-ai/claude-code"
pinned="$(sed -n 's/.*"@anthropic-ai\/claude-code": *"\([^"]*\)".*/\1/p' "$here/package.json" | head -n1)"

installed_version() {
  [ -x "$bin" ] && "$bin" --version 2>/dev/null | head -n1 || true
}

if [ "$(installed_version)" = "$pinned (Claude Code)" ] \
  && cmp -s "$here/package-lock.json" "$dest/package-lock.json"; then
  installed_version
  exit 0
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update && apt-get install -y nodejs npm
  else
    sudo apt-get update && sudo apt-get install -y nodejs npm
  fi
fi

mkdir -p "$dest"
cp "$here/package.json" "$here/package-lock.json" "$dest/"
(
  cd "$dest"
  npm ci --no-audit --no-fund --loglevel=error
  node "$package/install.cjs"
)

version="$(installed_version)"
if [ "$version" != "$pinned (Claude Code)" ]; then
  echo "install.sh: expected Claude Code $pinned at $bin, found '${version:-nothing}'" >&2
  exit 1
fi
echo "$version"
