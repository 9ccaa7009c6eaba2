#!/usr/bin/env bash
# The benchmark suite in one command: every table, peers on 127.0.0.1.
#   bench/run.sh            full run (~21 min on 2 cores), built with `--profile profiling`
#                           (release code generation plus debug info, for perf)
#   bench/run.sh --quick    reduced sizes on the debug binary that `cargo test` built (CI):
#                           no second build; prints the numbers, asserts only correctness
#                           (checksums, zero failed streams), never speed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --quick ]; then
  export PROFILE=debug RUNS=1
  echo "## stdio (2 MB, 1 run)"; bench/stdio.sh 2 1
  echo; echo "## SOCKS pool scaling (4 × 1 MB, pools 1 and 2)"; bench/socks.sh 1 4 1 2
  echo; echo "## concurrent streams (200 × 3 s)"; out=$(bench/streams.sh 200 3); echo "$out"
  failures=$(echo "$out" | tail -1 | awk -F'|' '{gsub(/ /,"",$4); print $4}')
  [ "$failures" = 0 ] || { echo "streams failed: $failures" >&2; exit 1; }
  echo; echo "## shell keystroke echo latency (50 keys)"; bench/shell.sh 50
  exit 0
fi
echo "## protocol core alone (two in-memory cores, one thread)"
cargo bench -q --bench core_pair 2>/dev/null | grep '^|'
echo; echo "## stdio bulk, 100 MB, 3 runs (baseline: plain ssh to the same sshd)"
bench/stdio.sh 100 3
echo; echo "## SOCKS: connect latency on a warm pool, 8 × 20 MB at --pace-ms 1 (baseline: pool of 1)"
RUNS=3 bench/socks.sh 20 8 1 2 4 8
echo; echo "## 1000 concurrent SOCKS streams for 20 s, trickling, then echoing ~400 B/s each"
bench/streams.sh 1000 20
bench/streams.sh 1000 20 active | tail -1
echo; echo "## forward: one connection vs the session ceiling, 8 connections over --sessions 1/2/4/8,"
echo "## connect latency on a warm forward, RSS with 1000 idle connections"
RUNS=3 bench/forward.sh 10 4 1000 1000 1 2 4 8
echo; echo "## shell: keystroke echo latency through a raw-mode remote cat (500 keys)"
bench/shell.sh 500
echo; echo "## time to first byte: stdio through the master vs a fresh SSM session"
cargo test -q --profile profiling --test control bench -- --ignored --nocapture 2>/dev/null | grep -A3 'time to first byte' || true
