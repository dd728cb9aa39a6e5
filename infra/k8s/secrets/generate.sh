#!/bin/sh
# Writes the files infra/k8s/secrets/kustomization.yaml turns into Secrets, each only if it is missing
# (so running it again changes nothing; to rotate one, delete its file and run it again). Needs openssl.
#
#   infra/k8s/secrets/generate.sh [postgres://user@host:5432/db]
#
# The URL (no password in it: that goes in files/auditor-db-password) defaults to the dev overlay's
# in-cluster PostgreSQL; give your own for ha. NATS passwords start with a letter: nats-server reads
# them as config tokens.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/files"
mkdir -p "$dir"
chmod 700 "$dir"
umask 077

put() { # put NAME COMMAND...: the command's output, without a trailing newline, into files/NAME
  name=$1
  shift
  if [ -e "$dir/$name" ]; then return 0; fi
  value=$("$@")
  # PEM keeps its closing newline; the other values have none (nats-server reads them as tokens).
  case "$name" in
    *.pem) printf '%s\n' "$value" > "$dir/$name" ;;
    *) printf '%s' "$value" > "$dir/$name" ;;
  esac
  echo "wrote files/$name"
}
nats_password() { printf 'p%s' "$(openssl rand -hex 16)"; }

for user in issuer revoker rotator auditor verifier agent; do
  put "nats-$user-password" nats_password
done
put issuer-kek openssl rand -hex 32
put issuer-dpop-nonce-secret openssl rand -hex 32
put auditor-checkpoint-key.pem openssl genpkey -algorithm ed25519
put auditor-checkpoint-public-keys.pem openssl pkey -in "$dir/auditor-checkpoint-key.pem" -pubout
put auditor-db-password openssl rand -hex 24
put auditor-db-url echo "${1:-postgres://aoa@aoa-postgres:5432/aoa_audit}"
