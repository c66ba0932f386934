# Sourced by demo.sh and test.sh: makes sure PostgreSQL's server programs (initdb,
# pg_ctl) are installed, with WITH_PGBOUNCER=1 (test.sh: the tests put pgbouncer in
# front of PostgreSQL) pgbouncer too, and with WITH_MAN=1 (test.sh: the tests render
# logctl's manual pages) man, and with WITH_BROWSER=1 (test.sh: the HTML report is
# opened in a headless browser and checked by a validator) chromium and tidy,
# installing Debian's packages when they are missing.
# Nothing is started here: logctl and the test harness start their own servers.

have_postgres() {
    command -v initdb >/dev/null 2>&1 && return 0
    command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null 2>&1
}

have_pgbouncer() {
    command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]
}

have_chromium() {
    command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]
}

missing=()
have_postgres || missing+=(postgresql postgresql-contrib)
[ "${WITH_PGBOUNCER:-0}" = 1 ] && ! have_pgbouncer && missing+=(pgbouncer)
[ "${WITH_MAN:-0}" = 1 ] && ! command -v man >/dev/null 2>&1 && missing+=(man-db)
[ "${WITH_BROWSER:-0}" = 1 ] && ! have_chromium && missing+=(chromium fonts-dejavu-core)
[ "${WITH_BROWSER:-0}" = 1 ] && ! command -v tidy >/dev/null 2>&1 && missing+=(tidy)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing Debian's ${missing[*]} (missing)" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    # Each check is an `if`: a false `[ ... ] && ...` as the last command would make
    # sourcing this file fail, and the caller (under `set -e`) stop after installing.
    installed() {
        if ! "${@:2}" >/dev/null 2>&1; then echo "$1 installation failed" >&2; exit 1; fi
    }
    installed PostgreSQL have_postgres
    if [ "${WITH_PGBOUNCER:-0}" = 1 ]; then installed pgbouncer have_pgbouncer; fi
    if [ "${WITH_MAN:-0}" = 1 ]; then installed man-db command -v man; fi
    if [ "${WITH_BROWSER:-0}" = 1 ]; then
        installed chromium have_chromium
        installed tidy command -v tidy
    fi
fi
