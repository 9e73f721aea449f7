#!/usr/bin/env bash
# Install what the real-VS-Code test needs: Debian packages (chromium, ripgrep,
# headers for code-server's native modules), code-server 4.100.3, playwright-core
# and @vscode/vsce. Everything from npm goes into a cache folder outside the repo.
#
# Idempotent: a warm run only checks a stamp file and the Debian packages.
# Works as root on a fresh machine (the install blockers of
# shared/notes/real-vscode.md are handled below).
#
# Prints the cache folder's absolute path as its last line of stdout.
set -euo pipefail

CODE_SERVER_VERSION="4.100.3"
# @vscode/ripgrep used by code-server 4.100.3 and the release tag it downloads.
RIPGREP_PKG_VERSION="1.15.11"
RIPGREP_TAG="v13.0.0-10"
PLAYWRIGHT_VERSION="${PYLIGHTNIX_PLAYWRIGHT_VERSION:-1.64.1}"
VSCE_VERSION="${PYLIGHTNIX_VSCE_VERSION:-3.9.2}"

CACHE="${PYLIGHTNIX_DEV_CACHE:-$HOME/.cache/pylightnix-dev}/vscode"
STAMP="$CACHE/.installed"
WANT_STAMP="code-server=$CODE_SERVER_VERSION playwright-core=$PLAYWRIGHT_VERSION vsce=$VSCE_VERSION"

log() { echo "[vscode-setup] $*" >&2; }

# --- Debian packages -------------------------------------------------------
DEB_PKGS=(chromium ripgrep libkrb5-dev libxkbfile-dev libsecret-1-dev libx11-dev
          pkg-config build-essential fonts-dejavu-core)
missing=()
for p in "${DEB_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

command -v node >/dev/null || { log "node is required (Node 20 for code-server $CODE_SERVER_VERSION)"; exit 1; }
command -v npm >/dev/null || { log "npm is required"; exit 1; }

# --- npm packages (warm path: stamp matches and binaries exist) -------------
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ] \
   && [ -x "$CACHE/code-server/node_modules/.bin/code-server" ] \
   && [ -e "$CACHE/tools/node_modules/playwright-core/package.json" ] \
   && [ -x "$CACHE/tools/node_modules/.bin/vsce" ]; then
  log "already installed in $CACHE"
  echo "$CACHE"
  exit 0
fi

mkdir -p "$CACHE/code-server" "$CACHE/tools" "$CACHE/tmp"
rm -f "$STAMP"

# Blocker 2: code-server's postinstall refuses root without unsafe-perm.
export npm_config_unsafe_perm=true
# Blocker 4: node-pty's postinstall runs `npx node-gyp` and must not prompt.
export npm_config_yes=true
# Blocker 5: node-gyp must use the local Node headers instead of downloading them.
NODE_PREFIX="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
if [ ! -e "$NODE_PREFIX/include/node/node_api.h" ]; then
  log "Node headers not found under $NODE_PREFIX/include/node (install the nodejs headers)"; exit 1
fi
export npm_config_nodedir="$NODE_PREFIX"
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

# Blocker 3: @vscode/ripgrep downloads rg from GitHub; it first looks in
# $TMPDIR/vscode-ripgrep-cache-<version>/. Put Debian's rg there.
export TMPDIR="$CACHE/tmp"
RG_CACHE="$TMPDIR/vscode-ripgrep-cache-$RIPGREP_PKG_VERSION"
RG_TAR="$RG_CACHE/ripgrep-$RIPGREP_TAG-x86_64-unknown-linux-musl.tar.gz"
if [ ! -s "$RG_TAR" ]; then
  mkdir -p "$RG_CACHE/stage"
  cp "$(command -v rg)" "$RG_CACHE/stage/rg"
  tar -czf "$RG_TAR" -C "$RG_CACHE/stage" rg
  rm -rf "$RG_CACHE/stage"
fi

cd "$CACHE/code-server"
[ -f package.json ] || echo '{"name":"pylightnix-dev-code-server","private":true}' > package.json
log "installing code-server $CODE_SERVER_VERSION (takes about a minute cold)"
npm install --no-save --unsafe-perm --loglevel=error "code-server@$CODE_SERVER_VERSION" >&2

cd "$CACHE/tools"
[ -f package.json ] || echo '{"name":"pylightnix-dev-tools","private":true}' > package.json
log "installing playwright-core $PLAYWRIGHT_VERSION and @vscode/vsce $VSCE_VERSION"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-save --loglevel=error \
  "playwright-core@$PLAYWRIGHT_VERSION" "@vscode/vsce@$VSCE_VERSION" >&2

# --version writes a default config under XDG_CONFIG_HOME: keep it out of $HOME.
XDG_CONFIG_HOME="$CACHE/tmp/xdg-config" XDG_DATA_HOME="$CACHE/tmp/xdg-data" \
  "$CACHE/code-server/node_modules/.bin/code-server" --version >&2
echo "$WANT_STAMP" > "$STAMP"
log "installed in $CACHE"
echo "$CACHE"
