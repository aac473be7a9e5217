#!/usr/bin/env bash
# Installs a real VS Code for the end-to-end suite: code-server 4.100.3 (= VS Code 1.100.3, runs on
# Node 20) from npm and Debian's Chromium (Playwright, which drives it, is a test dependency).
# Idempotent: everything lands in ~/.cache/starcoder-lsp/vscode (CODE_SERVER_DIR), each step is
# skipped when done.
# Recipe and the reasons for each odd step: ../shared/VSCODE.md.
set -euo pipefail
DIR="${CODE_SERVER_DIR:-$HOME/.cache/starcoder-lsp/vscode}"
VERSION=4.100.3
mkdir -p "$DIR"

if ! command -v chromium >/dev/null 2>&1 || ! command -v rg >/dev/null 2>&1 \
   || ! dpkg -s libkrb5-dev >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libkrb5-dev chromium ripgrep >/dev/null
fi

if [ ! -f "$DIR/.installed-$VERSION" ]; then
  rm -rf "$DIR/node_modules"
  # @vscode/ripgrep downloads rg from GitHub in its post-install unless its cache file exists.
  c="$(node -p "require('os').tmpdir()")/vscode-ripgrep-cache-1.15.11"; mkdir -p "$c"
  (cd "$(dirname "$(command -v rg)")" && tar czf "$c/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" rg)
  # root needs --unsafe-perm; node-pty's post-install runs `npx node-gyp` (needs npm_config_yes).
  # npm >= 11.17 skips dependencies' install scripts unless allowed; code-server's post-install
  # (and the npm installs it runs in lib/vscode) build its native modules, so allow them all here.
  npm_config_yes=true npm_config_dangerously_allow_all_scripts=true NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false npm install --unsafe-perm --no-save --prefix "$DIR" "code-server@$VERSION"
  touch "$DIR/.installed-$VERSION"
fi

echo "code-server $VERSION ready in $DIR"
