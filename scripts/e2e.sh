#!/usr/bin/env bash
# End-to-end test of the browser console in headless Chromium.
# Installs what it needs (npm ci; Debian's chromium via apt if missing; never
# a downloaded browser), builds the idm binary and runs tests/e2e.
# Screenshots: test-artifacts/e2e/ (git-ignored).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
    echo "installing chromium from Debian"
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update
    $sudo_cmd apt-get install -y chromium
fi

cargo build --bin idm

cd tests/e2e
# playwright-core never downloads browsers; the variable makes sure of it.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm ci --no-audit --no-fund
npm test
