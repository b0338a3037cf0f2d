#!/bin/sh
# Idempotent: print the path of a headless-capable Chromium, installing Debian's `chromium` package when missing.
# Used by tests/report (the report is rendered in a real browser); no browser download, only the distribution's package.
set -e
for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; exit 0; fi
done
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y chromium >/dev/null 2>&1; }
elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    sudo -n apt-get install -y chromium >/dev/null 2>&1
fi
command -v chromium || { echo "chromium is not installed and could not be installed (needs root and apt-get)" >&2; exit 1; }
