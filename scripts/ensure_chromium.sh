#!/usr/bin/env sh
# Make sure a `chromium` binary is on PATH for the dashboard's browser test (Playwright drives
# it through executable_path; Playwright's own browser download is never used).
# Fast when chromium is already there (one `command -v`). Otherwise installs Debian's `chromium`
# package with apt-get (scripts/apt_install.sh); nothing is downloaded from a browser vendor.
set -eu
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
rc=0
sh "$(dirname "$0")/apt_install.sh" chromium || rc=$?
if [ "$rc" -eq 3 ]; then
    echo "ensure_chromium: no chromium on PATH and it cannot be installed here; the browser test will skip" >&2
    exit 0
fi
[ "$rc" -eq 0 ] || exit "$rc"
command -v chromium >/dev/null 2>&1 || {
    echo "ensure_chromium: apt-get ran but no chromium is on PATH" >&2
    exit 1
}
echo "ensure_chromium: $(chromium --version 2>/dev/null || echo chromium) installed" >&2
