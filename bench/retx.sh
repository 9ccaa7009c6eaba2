#!/usr/bin/env bash
# Retransmissions (issue 11, finding 3), through the simulator to a real sshd on 127.0.0.1:
# - late acks: the agent writes to its target at WRITE_RATE bytes/s and acknowledges only what
#   it wrote (the real agent's habit, reference §12); an upload of SIZE_MB must cost (almost) no
#   resends. Printed: the client's resends per 1 KiB message sent (from `stdio -v`'s summary).
# - 5 % drop: every frame in both directions dropped at 5 %; the time to move SIZE_MB up and
#   down (down: the resends are the simulated agent's, which runs the same channel core).
#   bench/retx.sh [SIZE_MB] [RUNS]        BIN=path/to/session-proxy to measure a given binary
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${1:-20}
RUNS=${2:-3}
WRITE_RATE=${WRITE_RATE:-7000000}
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
stop_sim() { kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; }

# ssh sends SIGHUP to its ProxyCommand when done; the summary line must still be written.
cat > "$work/wrap" <<WRAP
#!/bin/sh
trap '' HUP
exec "$BIN" stdio -v "\$1" -p "\$2" 2>"$work/stdio.log"
WRAP
chmod +x "$work/wrap"
SSH=(ssh -F /dev/null -i "$work/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o LogLevel=ERROR -o BatchMode=yes -o ProxyCommand="$work/wrap %h %p")
# One transfer ($1 = up|down); prints "seconds bytes_sent retransmits".
xfer() {
  local t0 t1 got line
  rm -f "$work/stdio.log"
  t0=$(date +%s.%N)
  if [ "$1" = down ]; then got=$("${SSH[@]}" "$(id -un)@i-0123456789abcdef0" "cat $work/blob" | sha256sum | cut -d' ' -f1)
  else got=$("${SSH[@]}" "$(id -un)@i-0123456789abcdef0" sha256sum < "$work/blob" | cut -d' ' -f1); fi
  t1=$(date +%s.%N)
  [ "$got" = "$want" ] || { echo "checksum mismatch ($1)" >&2; exit 1; }
  for _ in $(seq 100); do grep -q ' summary: ' "$work/stdio.log" 2>/dev/null && break; sleep 0.05; done
  line=$(grep ' summary: ' "$work/stdio.log") || { echo "no summary from stdio -v" >&2; exit 1; }
  python3 - "$t0" "$t1" "$line" <<'PY'
import re, sys
t0, t1, line = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
sent = int(re.search(r"(\d+) bytes sent", line).group(1))
rtx = int(re.search(r"(\d+) retransmits", line).group(1))
print(f"{t1 - t0:.3f} {sent} {rtx}")
PY
}
# Reads "seconds bytes_sent retransmits" lines; prints the median time and per-run ratios.
summarise() {
  python3 -c "
import sys, statistics
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
secs = statistics.median(r[0] for r in rows)
ratios = ', '.join(f'{100 * r[2] / max(1, r[1] / 1024):.2f}' for r in rows)
rtx = ', '.join(str(int(r[2])) for r in rows)
print(f'{secs:.2f} | {ratios} | {rtx} |')"
}

echo "binary: $BIN"
echo "| scenario | direction | median s for $SIZE_MB MB | client resends per 1 KiB sent, % (each run; up only) | client resends (each run) |"
echo "|---|---|---:|---|---|"
start_sim --write-rate "$WRITE_RATE"
echo "| late acks (--write-rate $WRITE_RATE) | up | $(for _ in $(seq "$RUNS"); do xfer up; done | summarise)"
stop_sim
start_sim --drop 0.05 --seed 7
for dir in up down; do
  echo "| 5 % drop each way | $dir | $(for _ in $(seq "$RUNS"); do xfer $dir; done | summarise)"
done
stop_sim
