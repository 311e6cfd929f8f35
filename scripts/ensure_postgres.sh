#!/usr/bin/env sh
# Make sure PostgreSQL's server binaries (initdb, pg_ctl, postgres) are installed for
# `bestex services up` and the tests that start the services themselves.
# Fast when they are already there (a glob, no apt). Otherwise installs Debian's `postgresql`
# package with apt-get (scripts/apt_install.sh). Exit 1 when they cannot be installed.
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
sh "$(dirname "$0")/apt_install.sh" postgresql || {
    echo "ensure_postgres: PostgreSQL (initdb) is missing and could not be installed: install PostgreSQL >= 13 yourself" >&2
    exit 1
}
found || {
    echo "ensure_postgres: apt-get ran but no initdb was found under /usr/lib/postgresql/*/bin" >&2
    exit 1
}
echo "ensure_postgres: PostgreSQL installed" >&2
