#!/usr/bin/env sh
# Make sure a `chromium` binary is on PATH for the dashboard's browser test (Playwright drives
# it through executable_path; Playwright's own browser download is never used).
# Fast when chromium is already there (one `command -v`). Otherwise installs Debian's `chromium`
# package with apt-get, non-interactively; nothing is downloaded from a browser vendor.
set -eu
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: no chromium on PATH and no apt-get to install it; the browser test will skip" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "ensure_chromium: not root and no sudo: install the 'chromium' package yourself" >&2
        exit 0
    fi
fi
echo "ensure_chromium: installing Debian's chromium (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null 2>&1 || {
    echo "ensure_chromium: apt-get ran but no chromium is on PATH" >&2
    exit 1
}
echo "ensure_chromium: $(chromium --version 2>/dev/null || echo chromium) installed" >&2
