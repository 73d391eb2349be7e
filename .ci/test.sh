#!/usr/bin/env bash
# `make test`: every test, in phases, ending with a table of each phase's wall time and the count
# of tests run, so every log shows where the time went.
#
# The workspace is compiled once. The lints run inside that one build: cargo compiles the
# workspace's own crates through clippy's driver (`RUSTC_WORKSPACE_WRAPPER`, with `-D warnings`),
# which lints each crate while compiling it, and rustc compiles the dependencies (with no lints to
# run there anyway). Every cargo command below selects `--workspace`, so all of them resolve the
# same dependency features and reuse one build: the tests, the contract run (the binary the tests
# built) and the benchmarks' smoke runs. The installs (Debian packages, npm, the two Python
# virtualenvs) run in the background while the build uses the cores.
set -euo pipefail
cd "$(dirname "$0")/.."

MAKE=${MAKE:-make}
CARGO=${CARGO:-cargo}
BIN=target/debug/stella-integrations
PYTHON_CONNECTOR=target/connectors/python-example.wasm
LOGS=target/test-logs
mkdir -p "$LOGS"

# Every cargo command runs under the Makefile's linted build (`LINTED`): the same compiler for our
# crates in every command, so none of them compiles them again.
: "${RUSTC_WORKSPACE_WRAPPER:?run this through make test}"
export STELLA_PYTHON_CONNECTOR=$PWD/$PYTHON_CONNECTOR

started=$SECONDS
phases=()
tests_passed=0
tests_ignored=0
failed_phase=

report() {
  local status=$?
  {
    echo
    echo "make test: where the time went (wall time; $(nproc) cores)"
    local line
    for line in "${phases[@]}"; do
      IFS='|' read -r name seconds note <<<"$line"
      printf '  %-44s %5d s  %s\n' "$name" "$seconds" "$note"
    done
    printf '  %-44s %5d s  %d tests passed, %d ignored\n' "total" $((SECONDS - started)) "$tests_passed" "$tests_ignored"
    [ -z "$failed_phase" ] || echo "  FAILED in: $failed_phase (its log: $LOGS/)"
  } | tee "$LOGS/timings.txt"
  exit "$status"
}
trap report EXIT

# phase NAME COMMAND...: runs the command, its output shown and kept in $LOGS/NAME.log, and records
# its wall time; a test phase's note counts the tests its `test result:` lines report.
phase() {
  local name=$1
  shift
  local log="$LOGS/${name//[^a-z0-9]/-}.log" t0=$SECONDS
  echo "==> $name: $*"
  if ! "$@" 2>&1 | tee "$log"; then
    failed_phase=$name
    phases+=("$name|$((SECONDS - t0))|failed")
    return 1
  fi
  local passed ignored note=
  passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
  ignored=$(sed -n 's/^test result: ok\. .* \([0-9]*\) ignored.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
  if grep -q '^test result:' "$log"; then
    note="$passed tests"
    tests_passed=$((tests_passed + passed))
    tests_ignored=$((tests_ignored + ignored))
  elif grep -q 'Running benches/' "$log"; then
    note="$(grep -c 'Running benches/' "$log") benchmarks"
  fi
  phases+=("$name|$((SECONDS - t0))|$note")
}

phase "wasm target" "$MAKE" --no-print-directory setup

# The installs, in the background; waited for before the first phase that needs them.
(
  t0=$SECONDS
  "$MAKE" --no-print-directory -j3 test-tools python-toolchain contract-venv
  echo $((SECONDS - t0)) >"$LOGS/tools.seconds"
) >"$LOGS/tools.log" 2>&1 &
tools_pid=$!
wait_for_tools() {
  local t0=$SECONDS
  if ! wait "$tools_pid"; then
    cat "$LOGS/tools.log"
    failed_phase="tools (apt, npm, pip)"
    return 1
  fi
  phases+=("tools (apt, npm, pip; beside the build)|$(cat "$LOGS/tools.seconds")|then waited for: $((SECONDS - t0)) s")
}

phase "fmt" "$CARGO" fmt --all -- --check
# The benchmarks' build first: the plain build after it leaves target/debug/stella-integrations
# without `bench-switches` for the tests and the contract run.
phase "build + clippy: benchmarks (bench-switches)" "$MAKE" --no-print-directory build-benches
phase "build + clippy: workspace, tests, examples" "$MAKE" --no-print-directory build-tests
wait_for_tools
phase "python connector" \
  bash connectors/python-example/build.sh .venv/bin/componentize-py "$BIN" "$PYTHON_CONNECTOR"
phase "tests: unit (every crate)" "$CARGO" test --workspace --lib --bins
phase "tests: sandbox (runtime)" "$CARGO" test --workspace --test runtime
phase "tests: built-in connectors" "$CARGO" test --workspace --test connectors
phase "tests: service (api)" "$CARGO" test --workspace --test api
phase "tests: doc" "$CARGO" test --workspace --doc
phase "contract (schemathesis)" api/contract/run.sh "$BIN" .venv-contract/bin/schemathesis
phase "benchmarks, smoke runs" "$CARGO" test --workspace --features stella-integrations/bench-switches --bench '*'
