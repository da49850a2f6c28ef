#!/usr/bin/env bash
# Set up the Playwright browser tests:
#   1. Debian's Chromium (Playwright cannot download its own browser here). Installing it needs
#      root; nothing happens when /usr/bin/chromium already exists.
#   2. axe-core, the accessibility engine the tests inject into each page, from the npm
#      registry at the exact version of tests/browser/package-lock.json (`npm ci`); nothing
#      happens when that version is already installed.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BROWSER_TESTS="$ROOT/tests/browser"

install_chromium() {
    if [ -x "$CHROMIUM" ]; then
        echo "install-chromium: $CHROMIUM already present ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown')); nothing to do"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-chromium: $CHROMIUM is missing and this script must run as root to install it" >&2
        return 1
    fi
    echo "install-chromium: $CHROMIUM missing; running apt-get update"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    echo "install-chromium: installing the chromium package"
    apt-get install -y chromium
    if [ ! -x "$CHROMIUM" ]; then
        echo "install-chromium: apt-get finished but $CHROMIUM is still missing" >&2
        return 1
    fi
    echo "install-chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
}

install_axe() {
    local wanted installed=""
    wanted="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packages"]["node_modules/axe-core"]["version"])' "$BROWSER_TESTS/package-lock.json")"
    if [ -f "$BROWSER_TESTS/node_modules/axe-core/package.json" ]; then
        installed="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$BROWSER_TESTS/node_modules/axe-core/package.json")"
    fi
    if [ "$installed" = "$wanted" ]; then
        echo "install-chromium: axe-core $installed already installed; nothing to do"
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "install-chromium: npm is needed to install axe-core $wanted (apt-get install npm)" >&2
        return 1
    fi
    echo "install-chromium: installing axe-core $wanted from the npm registry (npm ci)"
    npm ci --prefix "$BROWSER_TESTS" --no-audit --no-fund --ignore-scripts
}

install_chromium
install_axe
