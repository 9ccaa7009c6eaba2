#!/usr/bin/env bash
# Keystroke echo latency of `session-proxy shell` (issue 14) through the simulator at the real
# agent's pacing (--pace-ms 1 --chunk 1024): bench/shell.py types one byte at a time on a real
# pty and times its echo by a raw-mode `cat` in the simulated instance's pty. Prints a table of
# p50/p99 in ms; asserts only that every byte came back, never a speed.
#   bench/shell.sh [SAMPLES]     (default 500)
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLES=${1:-500}
ID=i-0123456789abcdef0
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh
build_bin
# No port is dialled by a shell session; the instance address is a placeholder.
sshd_port=9

row() { # row LABEL SIM_FLAGS...
  local label=$1; shift
  start_sim --shell-command 'stty raw -echo; exec cat' "$@"
  read -r n p50 p99 min max < <(HOME=$work python3 bench/shell.py "$SAMPLES" "$BIN" "$ID")
  printf '| %-28s | %7s | %8s | %8s | %8s | %8s |\n' "$label" "$n" "$p50" "$p99" "$min" "$max"
  kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true
}
echo "| simulator                    | samples |  p50 ms  |  p99 ms  |  min ms  |  max ms  |"
echo "|------------------------------|---------|----------|----------|----------|----------|"
row "--pace-ms 1 --chunk 1024" --pace-ms 1 --chunk 1024
row "unpaced" --pace-ms 0
