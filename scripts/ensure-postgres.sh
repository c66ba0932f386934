# Sourced by demo.sh and test.sh: makes sure PostgreSQL's server programs (initdb,
# pg_ctl) are installed, installing Debian's package when they are missing.
# Nothing is started here: logctl and the test harness start their own clusters.

have_postgres() {
    command -v initdb >/dev/null 2>&1 && return 0
    command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null 2>&1
}

if ! have_postgres; then
    echo "PostgreSQL is not installed; installing Debian's postgresql package" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends postgresql postgresql-contrib >&2
    have_postgres || { echo "PostgreSQL installation failed" >&2; exit 1; }
fi
