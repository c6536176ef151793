#!/bin/sh
# Create the compose stack's secret files: docker/secrets/<name> for every template in
# docker/secrets.example/, each change-me-... placeholder replaced by 48 random hex characters (URL-safe,
# since passwords end up in connection strings). A secret that already exists is kept, never overwritten:
# delete its file to rotate it (docker/README.md says what else must change then).
#
#   sh docker/make-secrets.sh          # fills docker/secrets/
#   sh docker/make-secrets.sh DIR      # fills DIR instead
#
# docker/secrets/ is mode 700, so other users of this host cannot read it; the files in it are 644,
# because Compose (without Swarm) bind-mounts them into /run/secrets with the host's owner and mode, and
# the services run as other uids (postgres 999, mlflow 10001, prefect 10002).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/secrets}

umask 077
mkdir -p "$out"
chmod 700 "$out"
for template in "$here"/secrets.example/*; do
    name=$(basename "$template")
    target=$out/$name
    if [ -e "$target" ]; then
        echo "kept    $target"
        continue
    fi
    token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    value=$(sed "s/change-me-[A-Za-z0-9-]*/$token/g" "$template")
    tmp=$target.tmp.$$
    printf '%s\n' "$value" > "$tmp"
    chmod 644 "$tmp"
    mv "$tmp" "$target"
    echo "created $target"
done
