#!/usr/bin/env sh
# Make sure PostgreSQL's server binaries (initdb, pg_ctl, postgres) are installed for
# `bestex services up` and the tests that start the services themselves.
# Fast when they are already there (a glob, no apt). Otherwise installs Debian's `postgresql`
# package with apt-get, non-interactively. Exit 1 when they cannot be installed.
set -eu
found() {
    command -v initdb >/dev/null 2>&1 && return 0
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && return 0
    done
    return 1
}
if found; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_postgres: no PostgreSQL (initdb) and no apt-get to install it: install PostgreSQL >= 13 yourself" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "ensure_postgres: not root and no sudo: install Debian's 'postgresql' package yourself" >&2
        exit 1
    fi
fi
echo "ensure_postgres: installing Debian's postgresql (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
found || {
    echo "ensure_postgres: apt-get ran but no initdb was found under /usr/lib/postgresql/*/bin" >&2
    exit 1
}
echo "ensure_postgres: PostgreSQL installed" >&2
