#!/usr/bin/env bash
# Refreshes static/htmx/ from the npm package htmx.org (no CDN at runtime).
# Usage: scripts/update-htmx.sh [version]   (default: the pinned 2.x below)
set -euo pipefail
version="${1:-2.0.11}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "htmx.org@${version}" >/dev/null && tar xzf htmx.org-*.tgz)
install -m 0644 "$work/package/dist/htmx.min.js" "$root/static/htmx/htmx.min.js"
install -m 0644 "$work/package/LICENSE" "$root/static/htmx/LICENSE"
echo "htmx.org ${version} (npm), dist/htmx.min.js and LICENSE, copied by scripts/update-htmx.sh" > "$root/static/htmx/VERSION"
echo "static/htmx updated to htmx.org ${version}"
