#!/usr/bin/env sh
# Install Debian package(s) with apt-get, non-interactively (through `sudo -n` when not root).
# Used by ensure_chromium.sh and ensure_postgres.sh. Exit 3 when this machine cannot install
# (no apt-get, or not root and no sudo); else apt-get's own status.
set -eu
if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt_install: no apt-get to install $*: install it yourself" >&2
    exit 3
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "apt_install: not root and no sudo: install Debian's $* yourself" >&2
        exit 3
    fi
fi
echo "apt_install: installing Debian's $* (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
