#!/usr/bin/env bash
# Builds the Python example connector with componentize-py, then embeds its manifest with
# `stella-integrations connector package`.
#   build.sh <componentize-py> <stella-integrations> <output.wasm>
set -euo pipefail
componentize_py=$(realpath "$1")
cli=$(realpath "$2")
out=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$(dirname "$out")"
out=$(realpath "$out")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Rebuild only when the sources or the WIT changed.
stamp="$out.inputs"
inputs=$(cat "$here/app.py" "$here/connector.toml" "$root/wit/"*.wit | sha256sum | cut -d' ' -f1)
if [ -f "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
  echo "python-example is up to date"
  exit 0
fi
cp "$here/app.py" "$work/"
(cd "$work" && "$componentize_py" -d "$root/wit" -w integration-connector componentize app -o raw.wasm)
"$cli" connector package "$work/raw.wasm" --manifest "$here/connector.toml" -o "$out"
echo "$inputs" > "$stamp"
