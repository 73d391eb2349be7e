#!/usr/bin/env bash
# Runs schemathesis (its default checks) against the OpenAPI document the real binary serves,
# with a token carrying every scope, on a fresh SQLite database. Zero failures or this exits non-zero.
#
#   api/contract/run.sh <stella-integrations binary> <schemathesis executable> [extra schemathesis args]
set -euo pipefail
bin=$(realpath "$1")
schemathesis=$(realpath "$2")
config=$(realpath "$(dirname "$0")/schemathesis.toml")
shift 2
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
token=$("$bin" token --tenant contract --scopes "integrations.admin plugins.admin")
STELLA_LISTEN=127.0.0.1:0 STELLA_LOG=warn "$bin" serve 2>serve.log &
pid=$!
address=
for _ in $(seq 1 600); do
  address=$(sed -n 's/^stella-integrations listening on \(http:\/\/[^ ]*\).*/\1/p' serve.log)
  [ -n "$address" ] && break
  kill -0 "$pid" 2>/dev/null || { cat serve.log; echo "the service did not start" >&2; exit 1; }
  sleep 0.1
done
[ -n "$address" ] || { cat serve.log; echo "the service did not start in 60 s" >&2; exit 1; }
echo "schemathesis against $address"
PYTHONPATH="$(dirname "$config")" SCHEMATHESIS_HOOKS=hooks \
  "$schemathesis" --config-file "$config" run "$address/api/v1/openapi.json" \
  --header "Authorization: Bearer $token" \
  --seed 1 \
  --suppress-health-check all \
  "$@"
