#!/usr/bin/env bash
# Install Debian's Chromium for the Playwright browser tests (Playwright cannot download its own
# browser here). Idempotent: does nothing when /usr/bin/chromium already exists. Run as root.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "install-chromium: $CHROMIUM already present ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown')); nothing to do"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium: $CHROMIUM is missing and this script must run as root to install it" >&2
    exit 1
fi

echo "install-chromium: $CHROMIUM missing; running apt-get update"
export DEBIAN_FRONTEND=noninteractive
apt-get update
echo "install-chromium: installing the chromium package"
apt-get install -y chromium

if [ ! -x "$CHROMIUM" ]; then
    echo "install-chromium: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi
echo "install-chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
