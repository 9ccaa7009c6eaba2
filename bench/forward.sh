#!/usr/bin/env bash
# `forward` benchmarks (issue 13), against the simulator on 127.0.0.1; no sshd: the simulated
# agent dials the destinations (loopback blob and echo servers) itself. Four tables:
#   1. one connection at --pace-ms 1 vs the per-session ceiling: `stdio` on one session of the
#      same simulator, and the theoretical 1024 B/ms (one 1 KiB message per 1 ms sleep);
#   2. 8 parallel connections at --pace-ms 1 for each --sessions N: aggregate and scaling;
#   3. new-connection latency over a warm forward (connect, one byte echoed back), p50/p99,
#      on the paced and on the unpaced simulator;
#   4. the forward's RSS (VmRSS) with IDLE open idle connections, each echo-checked.
# Table 1's rates run from the first byte to EOF (session and stream set-up are table 3's
# subject); table 2's from the first connect to the last EOF. MB is 2^20 bytes, as in the
# other benches. Every byte is checksummed; a mismatch or a failed connection fails the run.
#   RUNS=3 bench/forward.sh [MB] [PAR_MB] [SAMPLES] [IDLE] [SESSIONS...]
#     MB: the single download (default 10); PAR_MB: each of the 8 parallel ones (default 4);
#     SAMPLES: latency samples per row (default 1000); IDLE: idle connections (default 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
MB=${1:-10}
PAR_MB=${2:-4}
SAMPLES=${3:-1000}
IDLE=${4:-1000}
shift 4 2>/dev/null || shift $#
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1 2 4 8)
PAR=8
ID=i-0123456789abcdef0
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh
build_bin
# IDLE connections cost a descriptor each in the client, the forward, the agent and the echo.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
load() { python3 bench/fwdload.py "$@"; }
py() { python3 -c "print($1)"; }

blob() { # blob NAME MB → a file of MB random MiB and a server that sends it once per connection
  head -c "$(py "int($2 * 1048576)")" /dev/urandom > "$work/$1"
  python3 bench/inetd.py "$work/$1.port" cat "$work/$1" 2>/dev/null & pids+=($!)
}
blob single "$MB"
blob par "$PAR_MB"
python3 bench/fwdload.py echo "$work/echo.port" & pids+=($!)
single_port=$(wait_port_file "$work/single.port")
par_port=$(wait_port_file "$work/par.port")
echo_port=$(wait_port_file "$work/echo.port")
sha() { sha256sum < "$work/$1" | cut -d' ' -f1; }
# The instance's own address is the single blob: `stdio` to port 22 downloads it.
sshd_port=$single_port

# start_forward DEST_PORT SESSIONS → sets fwd_pid and fwd_addr once all SESSIONS are up.
start_forward() {
  rm -f "$work/fwd.ready"
  HOME=$work XDG_CONFIG_HOME=$work XDG_RUNTIME_DIR=$work "$BIN" -v forward "0:127.0.0.1:$1" \
    --via "$ID" --sessions "$2" --ready-file "$work/fwd.ready" 2>"$work/fwd.log" & fwd_pid=$!
  pids+=($fwd_pid)
  fwd_addr=$(wait_port_file "$work/fwd.ready")
  for _ in $(seq 1200); do
    [ "$(grep -c 'session up' "$work/fwd.log")" -ge "$2" ] && return
    sleep 0.05
  done
  echo "forward: $2 sessions not up after 60 s" >&2; cat "$work/fwd.log" >&2; exit 1
}
stop_forward() { kill "$fwd_pid"; wait "$fwd_pid" 2>/dev/null || true; }
stop_sim() { kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; }
# Reads "bytes first_s all_s" lines; prints "min_MBps median_MBps": over first byte → last EOF
# with $1 = first (one connection), over first connect → last EOF with $1 = all (parallel).
rates() {
  python3 -c "
import sys, statistics
col = 1 if sys.argv[1] == 'first' else 2
r = sorted(int(f[0]) / 1048576 / float(f[col]) for f in (l.split() for l in sys.stdin if l.strip()))
print(f'{r[0]:.3f} {statistics.median(r):.3f}')" "$1"
}
# repeat CMD... → RUNS times; the first failure fails it (checksums are asserted, even in --quick).
repeat() { for _ in $(seq "$RUNS"); do "$@" || return 1; done; }

start_sim --pace-ms 1
ceiling=$(py "1024 * 1000 / 1048576")
echo "### one connection at --pace-ms 1 ($MB MB, $RUNS runs) vs the per-session ceiling"
echo "| path | min MB/s | median MB/s | vs stdio on one session | vs 1024 B/ms ($(py "f'{$ceiling:.3f}'") MB/s) |"
echo "|---|---:|---:|---:|---:|"
out=$(repeat load pipe "$(sha single)" "$BIN" stdio "$ID" | rates first)
read -r smin smed <<<"$out"
echo "| stdio, one session | $smin | $smed | 1.000 | $(py "f'{$smed / $ceiling:.3f}'") |"
start_forward "$single_port" 1
out=$(repeat load pull "$fwd_addr" 1 "$(sha single)" | rates first)
read -r fmin fmed <<<"$out"
echo "| forward, one connection | $fmin | $fmed | $(py "f'{$fmed / $smed:.3f}'") | $(py "f'{$fmed / $ceiling:.3f}'") |"
stop_forward

echo; echo "### $PAR parallel connections x $PAR_MB MB at --pace-ms 1 ($RUNS runs)"
echo "| --sessions | aggregate MB/s (min) | aggregate MB/s (median) | scaling vs --sessions ${SIZES[0]} |"
echo "|---:|---:|---:|---:|"
base=""
for n in "${SIZES[@]}"; do
  start_forward "$par_port" "$n"
  out=$(repeat load pull "$fwd_addr" "$PAR" "$(sha par)" | rates all)
  read -r amin amed <<<"$out"
  [ -n "$base" ] || base=$amed
  echo "| $n | $amin | $amed | $(py "f'{$amed / $base:.2f}'") |"
  stop_forward
done

echo; echo "### new connection over a warm forward: connect + one byte echoed ($SAMPLES samples)"
echo "| simulator | p50 ms | p99 ms | max ms |"
echo "|---|---:|---:|---:|"
latency_row() { # $1 = label
  start_forward "$echo_port" 1
  out=$(load latency "$fwd_addr" 20 "$SAMPLES")
  read -r p50 p99 mx <<<"$out"
  echo "| $1 | $p50 | $p99 | $mx |"
  stop_forward
}
latency_row "--pace-ms 1"
stop_sim
start_sim
latency_row "unpaced"

echo; echo "### the forward's memory with $IDLE open idle connections (one session, unpaced simulator)"
echo "| connections | failures | RSS before (MiB) | RSS with them open (MiB) | KiB per connection |"
echo "|---:|---:|---:|---:|---:|"
start_forward "$echo_port" 1
load latency "$fwd_addr" 0 5 >/dev/null # one stream opened and closed: steady state
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$fwd_pid/status")
out=$(load idle "$fwd_addr" "$IDLE" "$fwd_pid")
read -r failures rss <<<"$out"
echo "| $IDLE | $failures | $(py "f'{$rss0 / 1024:.1f}'") | $(py "f'{$rss / 1024:.1f}'") | $(py "f'{($rss - $rss0) / $IDLE:.1f}'") |"
stop_forward
[ "$failures" = 0 ] || { echo "forward bench: $failures idle connections failed" >&2; exit 1; }
