# shellcheck shell=bash
# scripts/_lib.sh — helpers shared by the other scripts in scripts/. Sourced, never run.
#
# Gives: say/die (messages on stderr), run/as_root (honour HUB_SCRIPTS_DRY_RUN=1 by
# printing what would change instead of doing it), root_query (read-only, runs even then),
# hub_amqp_password_file, port_open (bash /dev/tcp probe with a timeout), URL host/port
# parsing, apt_install (Debian packages, apt-get update only when needed), have_systemd,
# and wait_for_port (bounded wait).

# shellcheck disable=SC2034 # used by the scripts that source this file
HUB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# rabbitmq-server, rabbitmqctl and runuser live in sbin, which a non-login PATH may lack.
case ":$PATH:" in *":/usr/sbin:"*) ;; *) PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" ;; esac
export PATH

say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

dry_run() { [[ "${HUB_SCRIPTS_DRY_RUN:-0}" == 1 ]]; }

# run CMD... — run it, or under HUB_SCRIPTS_DRY_RUN=1 only print it.
run() {
    if dry_run; then
        say "[dry-run] would run:$(printf ' %q' "$@")"
    else
        "$@"
    fi
}

# as_root CMD... — like run, via sudo when we are not root.
as_root() {
    if ((EUID == 0)); then
        run "$@"
    elif command -v sudo >/dev/null 2>&1; then
        run sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# root_query CMD... — run a read-only CMD as root (via sudo when we are not root), also
# under HUB_SCRIPTS_DRY_RUN=1: a dry run still looks at the current state.
root_query() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# hub_amqp_password_file — where the hub's own broker user's password is kept (root only).
hub_amqp_password_file() { printf '%s' "${HUB_AMQP_PASSWORD_FILE:-/etc/sif-hub/amqp-password}"; }

# have CMD — is CMD installed? In dry-run mode HUB_SCRIPTS_PRETEND_MISSING="cmd ..."
# makes the listed commands look absent, to show the install branch without installing.
have() {
    if dry_run && [[ " ${HUB_SCRIPTS_PRETEND_MISSING:-} " == *" $1 "* ]]; then
        return 1
    fi
    command -v "$1" >/dev/null 2>&1
}

# port_open HOST PORT — does something accept TCP connections there (3 s timeout)?
port_open() {
    # shellcheck disable=SC2016 # $1 and $2 expand in the inner bash
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" >/dev/null 2>&1
}

# wait_for_port HOST PORT SECONDS — poll until the port answers; non-zero on timeout.
wait_for_port() {
    local host=$1 port=$2 deadline=$((SECONDS + $3))
    until port_open "$host" "$port"; do
        ((SECONDS < deadline)) || return 1
        sleep 1
    done
}

# is_local_host HOST — loopback (or empty, meaning a local socket)?
is_local_host() {
    case "$1" in
        "" | localhost | 127.* | ::1 | "[::1]") return 0 ;;
        *) return 1 ;;
    esac
}

# url_authority URL — "user:pass@host:port" part of scheme://user:pass@host:port/path?query
url_authority() {
    local u=$1
    u=${u#*://}
    u=${u%%/*}
    u=${u%%\?*}
    printf '%s' "$u"
}

# url_userinfo URL — "user:pass" (encoded as in the URL) or empty.
url_userinfo() {
    local a
    a=$(url_authority "$1")
    [[ $a == *@* ]] && printf '%s' "${a%@*}"
    return 0
}

# url_host URL DEFAULT / url_port URL DEFAULT — host (without [] for IPv6) and port.
url_host() {
    local a
    [[ -n $1 ]] || {
        printf '%s' "$2"
        return 0
    }
    a=$(url_authority "$1")
    a=${a##*@}
    if [[ $a == \[* ]]; then
        a=${a#\[}
        a=${a%%]*}
    else
        a=${a%%:*}
    fi
    printf '%s' "${a:-$2}"
}
url_port() {
    local a p=""
    [[ -n $1 ]] || {
        printf '%s' "$2"
        return 0
    }
    a=$(url_authority "$1")
    a=${a##*@}
    if [[ $a == \[* ]]; then
        a=${a#*]}
        p=${a#:}
    elif [[ $a == *:* ]]; then
        p=${a##*:}
    fi
    printf '%s' "${p:-$2}"
}

# have_systemd — is systemd actually running as init (not just installed)?
have_systemd() { [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; }

_HUB_APT_UPDATED=0
_apt_update() {
    say "running apt-get update"
    _HUB_APT_UPDATED=1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
}
_apt_get_install() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# apt_install PKG... — install Debian packages quietly. apt-get update runs first only
# when the package lists are empty (fresh image), or once more if the install fails.
apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        die "missing $*; this script only knows how to install them with Debian's apt-get"
    say "installing with apt-get: $*"
    if ((_HUB_APT_UPDATED == 0)) && ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        _apt_update
    fi
    if dry_run; then
        _apt_get_install "$@"
        return 0
    fi
    local log
    log=$(mktemp)
    if ! _apt_get_install "$@" >"$log" 2>&1; then
        # Stale package lists are the usual cause: update once and try again.
        if ((_HUB_APT_UPDATED == 1)) || ! _apt_update || ! _apt_get_install "$@" >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            die "apt-get install $* failed"
        fi
    fi
    rm -f "$log"
}
