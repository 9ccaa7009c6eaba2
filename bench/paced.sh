#!/usr/bin/env bash
# CPU per message of the `stdio` client and of a `serve` master with one session, paced like
# the real agent and unpaced, through the simulator to a real sshd on 127.0.0.1. At the agent's
# pace the cost is per wake-up, not per byte, so this prints CPU-seconds per 10 MB *and*
# microseconds per received message. Only the stdio (or serve) process is measured (user+sys),
# never the simulator, ssh or curl: CPU-seconds hardly move when other work loads the machine;
# wall time does.
#   bench/paced.sh [SIZE_MB] [RUNS]        (default 10 MB, 3 runs; median reported)
#   BIN=/path/to/session-proxy bench/paced.sh   measures that binary without building
#   SKIP_SERVE=1 bench/paced.sh                  stdio rows only
# The first row is the machine's floor (bench/paced-floor.c): kernel work alone per message.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${1:-10}
RUNS=${2:-3}
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh
build_bin
start_sshd
head -c $((SIZE_MB * 1048576)) /dev/urandom > "$work/blob"
want=$(sha256sum < "$work/blob" | cut -d' ' -f1)

# ssh sends SIGHUP to its ProxyCommand when done; `time` must survive it to report the CPU.
# -v makes stdio log its summary line, which carries the message counts.
cat > "$work/wrap" <<WRAP
#!/bin/sh
trap '' HUP
exec /usr/bin/time -o "$work/cpu" -f '%U %S' "$BIN" -v stdio "\$1" -p "\$2" 2>"$work/stdio.log"
WRAP
chmod +x "$work/wrap"
SSH=(ssh -F /dev/null -i "$work/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o LogLevel=ERROR -o BatchMode=yes -o ProxyCommand="$work/wrap %h %p")
HOST="$(id -un)@i-0123456789abcdef0"

# One transfer; prints "seconds cpu_seconds messages" (messages the client received for down,
# sent for up: the side whose per-message cost is the point).
xfer() { # $1 = down|up
  local t0 t1 got cpu msgs
  rm -f "$work/cpu" "$work/stdio.log"
  t0=$(date +%s.%N)
  if [ "$1" = down ]; then got=$("${SSH[@]}" "$HOST" "cat $work/blob" | sha256sum | cut -d' ' -f1)
  else got=$("${SSH[@]}" "$HOST" sha256sum < "$work/blob" | cut -d' ' -f1); fi
  t1=$(date +%s.%N)
  [ "$got" = "$want" ] || { echo "checksum mismatch ($1)" >&2; exit 1; }
  for _ in $(seq 100); do [ -s "$work/cpu" ] && break; sleep 0.05; done
  cpu=$(tail -n 1 "$work/cpu" | awk '{print $1+$2}')
  if [ "$1" = down ]; then msgs=$(sed -n 's/.* \([0-9]*\) messages received.*/\1/p' "$work/stdio.log" | tail -n 1)
  else msgs=$(sed -n 's/.* \([0-9]*\) messages sent.*/\1/p' "$work/stdio.log" | tail -n 1); fi
  # Builds from before the summary counted messages: estimate from the bytes (1 KiB each).
  if [ -z "$msgs" ]; then
    local label=received; [ "$1" = up ] && label=sent
    msgs=$(sed -n "s/.* \([0-9]*\) bytes $label.*/\1/p" "$work/stdio.log" | tail -n 1)
    [ -n "$msgs" ] || { echo "no summary line in the stdio log:" >&2; cat "$work/stdio.log" >&2; exit 1; }
    msgs=$(( (msgs + 1023) / 1024 ))
  fi
  echo "$(python3 -c "print($t1 - $t0)") $cpu $msgs"
}
# Reads "seconds cpu messages" lines; prints the row from the median-CPU run. $3: "≈" marks
# estimated message counts.
row() {
  python3 -c "
import sys, statistics
rows=sorted((tuple(map(float,l.split())) for l in sys.stdin if l.strip()), key=lambda r: r[1])
s, cpu, msgs = rows[len(rows)//2]
approx = sys.argv[3] if len(sys.argv) > 3 else ''
print(f'| {sys.argv[1]} | {sys.argv[2]} | {$SIZE_MB/s:.2f} | {cpu*10/$SIZE_MB:.3f} | {approx}{int(msgs)} | {cpu*1e6/max(msgs,1):.1f} |')" "$@"
}
# `serve`, one session (pool of 1): a SOCKS download over HTTP; the master's CPU is read from
# /proc before and after. Messages are estimated from the bytes (1 KiB each, SSH framing aside).
python3 - "$work" "$work/http.port" <<PY >/dev/null 2>&1 & pids+=($!)
$PY_REPORT_PORT
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
report_port(server.socket, sys.argv[2])
server.serve_forever()
PY
hport=$(wait_port_file "$work/http.port")
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$1/stat"; }
xfer_serve() {
  local t0 t1 c0 c1 got
  c0=$(proc_cpu "$serve_pid"); t0=$(date +%s.%N)
  got=$(curl -s --socks5-hostname "127.0.0.1:$socks_port" "http://127.0.0.1:$hport/blob" | sha256sum | cut -d' ' -f1)
  t1=$(date +%s.%N); c1=$(proc_cpu "$serve_pid")
  [ "$got" = "$want" ] || { echo "checksum mismatch (serve)" >&2; exit 1; }
  echo "$(python3 -c "print($t1 - $t0, $c1 - $c0)") $((SIZE_MB * 1024))"
}
serve_rows() { # $1 = label
  write_pool_config "$work/config.yaml" 1
  start_serve "$work/config.yaml" paced
  xfer_serve >/dev/null # warm the pool's one connection
  for _ in $(seq "$RUNS"); do xfer_serve; done | row "$1" "serve down" "≈"
  kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
}

echo "| agent | what | MB/s | CPU s / 10 MB | messages | CPU µs / message |"
echo "|---|---|---:|---:|---:|---:|"
# The kernel's share on this machine: a C process that only wakes, reads, writes and acks
# (bench/paced-floor.c). stdio's figure minus this one is session-proxy's own cost per message.
floor_run() {
  local t0 t1 out
  t0=$(date +%s.%N); out=$("$work/floor" $((SIZE_MB * 1024))); t1=$(date +%s.%N)
  echo "$(python3 -c "print($t1 - $t0)") $(echo "$out" | awk '{print $4, $2}')"
}
if cc -O2 -o "$work/floor" bench/paced-floor.c; then
  for _ in $(seq "$RUNS"); do floor_run; done | row "paced 1 ms" "floor (C, kernel work only)"
fi
for mode in "paced 1 ms:--pace-ms 1" "unpaced:"; do
  label=${mode%%:*}; flags=${mode#*:}
  # shellcheck disable=SC2086
  start_sim $flags
  for dir in down up; do
    # Upload is paced by the client, not the agent: measure it once, unpaced.
    [ "$dir" = up ] && [ -n "$flags" ] && continue
    for _ in $(seq "$RUNS"); do xfer "$dir"; done | row "$label" "stdio $dir"
  done
  [ "${SKIP_SERVE:-}" = 1 ] || serve_rows "$label"
  kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true
done
