#!/bin/sh
# The aoa image's entry point: the first argument picks what runs.
#
#   issuer | revoker | rotator | auditor | console   that service (node services/<name>/dist/main.js)
#   agent [options]                        the agent sidecar (aoa agent ...)
#   aoa <command> [options]                any aoa CLI command (status, keys, revoke, audit, ...)
#   anything else                          run as given (e.g. `node services/issuer/dist/main.js`)
#
# `exec` makes node PID 1, so SIGTERM from `docker stop` or Kubernetes reaches the service, which
# stops accepting, finishes in-flight work and exits 0.
set -eu
app=$(cd "$(dirname "$0")/../.." && pwd)

case "${1:-}" in
  issuer | revoker | rotator | auditor | console)
    service=$1
    shift
    exec node "$app/services/$service/dist/main.js" "$@"
    ;;
  agent)
    # A sidecar allocates little: a 1 MB young generation keeps its resident memory near 82 MB
    # instead of 92 MB (bench/results/agent-memory.md).
    exec node --max-semi-space-size=1 "$app/packages/cli/dist/main.js" "$@"
    ;;
  aoa)
    shift
    exec node "$app/packages/cli/dist/main.js" "$@"
    ;;
  "" | -h | --help)
    echo "usage: <image> issuer|revoker|rotator|auditor|console | agent [options] | aoa <command> [options]" >&2
    exit 2
    ;;
  *)
    exec "$@"
    ;;
esac
