#!/bin/sh
# Entrypoint wrapper for every service of the compose stack: check the secrets the service needs, then
# exec its real command.
#
#   SYNTHPIPE_SECRETS="postgres_password PGPASSWORD=postgres_password ..." synthpipe-secrets CMD [ARG...]
#
# Each word of SYNTHPIPE_SECRETS is a secret name, optionally prefixed with VAR=. The secret is the file
# $SYNTHPIPE_SECRETS_DIR/<name> (default /run/secrets, where Compose mounts `secrets:`). Every listed
# secret must exist, be readable, be non-empty, hold no whitespace and not still be a `change-me`
# placeholder from docker/secrets.example. With VAR=, the value is exported as VAR for images that cannot
# read a secret file themselves (images that can, like postgres with POSTGRES_PASSWORD_FILE, list the
# bare name so it is only checked). Each problem is one line on stderr naming the secret; after the
# check the wrapper exits 2 if there was any problem, else it execs CMD.
#
# POSIX sh and `cat` only: it runs in the Debian, Ubuntu and UBI-micro (MinIO) images alike.
set -euf   # -f: the names in SYNTHPIPE_SECRETS are split on spaces, never globbed

me=synthpipe-secrets
dir=${SYNTHPIPE_SECRETS_DIR:-/run/secrets}

if [ -z "${SYNTHPIPE_SECRETS+set}" ]; then
    echo "$me: SYNTHPIPE_SECRETS is not set: the service must list the secrets it needs" >&2
    exit 2
fi
if [ $# -eq 0 ]; then
    echo "$me: no command to run after the secrets check" >&2
    exit 2
fi

bad=0
reported=" "
# one line per secret, however often the list names it
fail() {
    case $reported in
        *" $1 "*) ;;
        *) echo "$me: secret $1 $2" >&2; reported="$reported$1 " ;;
    esac
    bad=1
}

for spec in $SYNTHPIPE_SECRETS; do
    name=${spec#*=}
    var=
    if [ "$name" != "$spec" ]; then
        var=${spec%%=*}
    fi
    case $var in
        *[!A-Za-z0-9_]* | [0-9]*)
            fail "$name" "in SYNTHPIPE_SECRETS: '$var' is not a variable name"
            continue ;;
    esac
    case $name in
        "" | *[!A-Za-z0-9_.-]*)
            fail "'$name'" "in SYNTHPIPE_SECRETS ('$spec') is not a secret file name"
            continue ;;
    esac
    file=$dir/$name
    if [ ! -f "$file" ]; then
        fail "$name" "is missing: no file $file (run docker/make-secrets.sh, see docker/README.md)"
        continue
    fi
    if ! value=$(cat "$file" 2>/dev/null); then
        fail "$name" "is not readable by uid $(id -u 2>/dev/null || echo '?') in $file (the file on the host must be mode 644)"
        continue
    fi
    # $(...) has dropped trailing newlines, so a file written with echo is fine
    case $value in
        "")
            fail "$name" "is empty ($file)" ;;
        *[Cc][Hh][Aa][Nn][Gg][Ee]-[Mm][Ee]*)
            fail "$name" "is still the change-me placeholder ($file): run docker/make-secrets.sh or write a real value" ;;
        *[[:space:]]*)
            fail "$name" "contains whitespace ($file): one line, no spaces" ;;
        *)
            if [ -n "$var" ]; then
                export "$var=$value"
            fi ;;
    esac
done
unset value

if [ "$bad" -ne 0 ]; then
    exit 2
fi
exec "$@"
