#!/usr/bin/env bash
# Install the Debian packages the report tests need, only when they are missing:
#   chromium          headless browser (tests/reports/test_browser_check.py)
#   poppler-utils     pdftoppm, PDF page -> PNG (tests/reports/test_pdf_render.py)
#   fonts-dejavu-core DejaVuSans.ttf, the Unicode font of reports/pdf.py
# Idempotent: exits 0 without touching apt when everything is already there.
# Prints one line saying what it did. Needs root (or sudo) only when it installs.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-test-deps: chromium, pdftoppm and DejaVuSans already installed; nothing to do"
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "install-test-deps: need root to apt-get install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi

start=$SECONDS
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# apt's chatter (and debconf's "apt-utils is not installed") goes to a log shown on failure
if ! { "${sudo[@]}" apt-get update -qq \
       && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
              --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-test-deps: failed to install ${missing[*]}" >&2
    exit 1
fi
echo "install-test-deps: installed ${missing[*]} in $((SECONDS - start)) s"
