#!/usr/bin/env bash
# CI for the VS Code extension. Run from the repository root: `bash vscode-extension/ci.sh`.
# Needs Node >= 20; downloads nothing but npm packages. Builds and checks starcoder-lsp.vsix; the
# extension is then tested in a real VS Code (code-server) by tests/vscode, which `make test` runs
# after this script.
set -euo pipefail
cd "$(dirname "$0")"
export NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false NPM_CONFIG_UPDATE_NOTIFIER=false

step() { printf '\n=== %s (%ss)\n' "$1" "$SECONDS"; }

node -e 'const [maj] = process.versions.node.split(".").map(Number); if (maj < 20) { console.error(`Node ${process.versions.node}: need >= 20`); process.exit(1); }'

step "npm ci"
npm ci --no-audit --no-fund

step "typecheck"
npm run --silent typecheck

step "lint"
npm run --silent lint

step "unit tests"
npm run --silent test

step "build + package (.vsix)"
rm -f starcoder-lsp.vsix
npm run --silent package
python3 - <<'PY'
import json, sys, zipfile
with zipfile.ZipFile("starcoder-lsp.vsix") as z:
    names = set(z.namelist())
    need = {"extension/package.json", "extension/dist/extension.js", "extension/readme.md", "extension/LICENSE.txt"}
    have = {n for n in names if n.lower() in {x.lower() for x in need}}
    missing = {x for x in need if x.lower() not in {n.lower() for n in have}}
    stray = [n for n in names if n.startswith(("extension/node_modules/", "extension/src/", "extension/test/"))]
    manifest = json.loads(z.read("extension/package.json"))
if missing or stray or manifest.get("main") != "./dist/extension.js":
    sys.exit(f"bad .vsix: missing={sorted(missing)} stray={stray[:5]} main={manifest.get('main')}")
print(f"starcoder-lsp.vsix OK: {len(names)} files, version {manifest['version']}")
PY

step "done"
