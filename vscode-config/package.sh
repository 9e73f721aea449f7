#!/usr/bin/env bash
# Package vscode-config/extension/ as a .vsix with @vscode/vsce from npm.
# vsce is installed (once) under ${PYLIGHTNIX_DEV_CACHE:-$HOME/.cache/pylightnix-dev}/vscode/tools,
# never globally. Usage: vscode-config/package.sh [OUTPUT.vsix]
# Prints the .vsix path as its last line.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXT="$HERE/extension"
VSCE_VERSION="${PYLIGHTNIX_VSCE_VERSION:-3.9.2}"
TOOLS="${PYLIGHTNIX_DEV_CACHE:-$HOME/.cache/pylightnix-dev}/vscode/tools"
VSCE="$TOOLS/node_modules/.bin/vsce"

if [ ! -x "$VSCE" ]; then
  mkdir -p "$TOOLS"
  [ -f "$TOOLS/package.json" ] || echo '{"name":"pylightnix-dev-tools","private":true}' > "$TOOLS/package.json"
  echo "installing @vscode/vsce $VSCE_VERSION into $TOOLS" >&2
  (cd "$TOOLS" && npm install --no-save --loglevel=error --fund=false --audit=false "@vscode/vsce@$VSCE_VERSION" >&2)
fi

VERSION="$(node -p "require('$EXT/package.json').version")"
OUT="${1:-$EXT/pylightnix-debug-$VERSION.vsix}"
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
mkdir -p "$(dirname "$OUT")"
(cd "$EXT" && "$VSCE" package --no-dependencies --skip-license --allow-missing-repository --out "$OUT" >&2)
echo "$OUT"
