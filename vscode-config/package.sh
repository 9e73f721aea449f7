#!/usr/bin/env bash
# Package vscode-config/extension/ as a .vsix with @vscode/vsce from npm.
# vsce is installed (once) under ${PYLIGHTNIX_DEV_CACHE:-$HOME/.cache/pylightnix-dev}/vscode/tools,
# never globally. Usage: vscode-config/package.sh [OUTPUT.vsix]
# Prints the .vsix path as its last line.
#
# First it fills extension/bundled/ (not committed; see docs/vscode-install.md):
#   wheels/   a wheel of this project (the install hint for the program's interpreter)
#   adapter/  dap_adapter, from that wheel (without dap_adapter/testing.py, the test client)
#   libs/     the wheel's debugpy ("dap" extra) and IPython with their dependencies,
#             pure-Python builds resolved for Python 3.10 so they load on 3.10 to 3.13
#   bundle.json
# This needs pip and the package index; PYLIGHTNIX_BUNDLE_PYTHON picks the Python that
# runs pip (default: the repository's .venv, else python3).
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

REPO="$(dirname "$HERE")"
PY="${PYLIGHTNIX_BUNDLE_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PY="$REPO/.venv/bin/python"; else PY=python3; fi
fi
BUNDLE="$EXT/bundled"
PIPLOG="$(mktemp)"
trap 'rm -f "$PIPLOG"' EXIT
pip_quiet() {
  if ! "$PY" -m pip --disable-pip-version-check "$@" >"$PIPLOG" 2>&1; then
    cat "$PIPLOG" >&2
    echo "package.sh: '$PY -m pip $1 ...' failed (output above)" >&2
    exit 1
  fi
}
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/wheels" "$BUNDLE/adapter"
echo "building the pylightnix wheel and the bundled libraries (pip, $PY)" >&2
pip_quiet wheel --no-deps --wheel-dir "$BUNDLE/wheels" "$REPO"
WHEEL="$(cd "$BUNDLE/wheels" && ls pylightnix_breakpoints-*.whl)"
# pip evaluates environment markers for the Python running it, not for --python-version:
# name IPython's dependencies for Python 3.10 (and Windows) explicitly.
pip_quiet install --target "$BUNDLE/libs" --python-version 3.10 --implementation py \
  --only-binary=:all: --no-compile "$BUNDLE/wheels/$WHEEL[dap]" \
  "exceptiongroup" "typing_extensions>=4.6" "colorama"
mv "$BUNDLE/libs/dap_adapter" "$BUNDLE/adapter/dap_adapter"
rm -f "$BUNDLE/adapter/dap_adapter/testing.py"  # the test client is no part of the runtime
# pylightnix itself comes from the program's interpreter, never from the bundle.
# jedi's stubs for third-party packages and IPython's man pages are not needed for
# the console and are most of the bundle's files (vsce is slow with many files).
rm -rf "$BUNDLE/libs/pylightnix" "$BUNDLE/libs"/pylightnix_breakpoints-*.dist-info "$BUNDLE/libs/bin" \
  "$BUNDLE/libs/share" "$BUNDLE/libs/jedi/third_party/typeshed/stubs" "$BUNDLE/libs/jedi/third_party/django-stubs"
"$PY" - "$BUNDLE" "$WHEEL" <<'PYEOF'
import json, os, sys
bundle, wheel = sys.argv[1], sys.argv[2]
libs = sorted(d[:-len(".dist-info")] for d in os.listdir(os.path.join(bundle, "libs")) if d.endswith(".dist-info"))
with open(os.path.join(bundle, "bundle.json"), "w") as f:
    json.dump({"wheel": "wheels/" + wheel, "requiresPython": "3.10", "libs": libs}, f, indent=2)
PYEOF

VERSION="$(node -p "require('$EXT/package.json').version")"
OUT="${1:-$EXT/pylightnix-debug-$VERSION.vsix}"
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
mkdir -p "$(dirname "$OUT")"
(cd "$EXT" && "$VSCE" package --no-dependencies --skip-license --allow-missing-repository --out "$OUT" >&2)
echo "$OUT"
