#!/usr/bin/env bash
# stdio bulk throughput and client CPU, through the simulator to a real sshd on 127.0.0.1.
# Prints a markdown table: MB/s down and up (min and median of RUNS), the ratio to plain ssh
# to the same sshd, and session-proxy's CPU seconds per 100 MB.
#   bench/stdio.sh [SIZE_MB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${1:-100}
RUNS=${2:-3}
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh
build_bin
start_sshd
port=$sshd_port
head -c $((SIZE_MB * 1048576)) /dev/urandom > "$work/blob"
want=$(sha256sum < "$work/blob" | cut -d' ' -f1)

stop_sim() { kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; }
# CPU seconds (user+sys) the simulator process has used so far.
sim_cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$sim_pid/stat"; }

# ssh sends SIGHUP to its ProxyCommand when done; `time` must survive it to report the CPU used.
cat > "$work/wrap" <<WRAP
#!/bin/sh
trap '' HUP
exec /usr/bin/time -o "$work/cpu" -f '%U %S' "$BIN" stdio "\$1" -p "\$2"
WRAP
chmod +x "$work/wrap"
SSH=(ssh -F /dev/null -i "$work/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes)
# One transfer; prints "seconds cpu_seconds" (cpu = session-proxy user+sys, 0 for plain ssh).
xfer() { # $1 = down|up, $2 = via (proxy|plain)
  local t0 t1 cpu=0 got
  rm -f "$work/cpu"
  if [ "$2" = proxy ]; then
    local pc="$work/wrap %h %p"
    t0=$(date +%s.%N)
    if [ "$1" = down ]; then got=$("${SSH[@]}" -o ProxyCommand="$pc" "$(id -un)@i-0123456789abcdef0" "cat $work/blob" | sha256sum | cut -d' ' -f1)
    else got=$("${SSH[@]}" -o ProxyCommand="$pc" "$(id -un)@i-0123456789abcdef0" sha256sum < "$work/blob" | cut -d' ' -f1); fi
    t1=$(date +%s.%N)
    for _ in $(seq 50); do [ -s "$work/cpu" ] && break; sleep 0.05; done
    cpu=$(tail -n 1 "$work/cpu" | awk '{print $1+$2}' 2>/dev/null || echo 0)
  else
    t0=$(date +%s.%N)
    if [ "$1" = down ]; then got=$("${SSH[@]}" -p "$port" "$(id -un)@127.0.0.1" "cat $work/blob" | sha256sum | cut -d' ' -f1)
    else got=$("${SSH[@]}" -p "$port" "$(id -un)@127.0.0.1" sha256sum < "$work/blob" | cut -d' ' -f1); fi
    t1=$(date +%s.%N)
  fi
  [ "$got" = "$want" ] || { echo "checksum mismatch ($1 $2)" >&2; touch "$work/FAILED"; exit 1; }
  echo "$(python3 -c "print($t1 - $t0)") $cpu"
}
stats() { # reads "seconds cpu" lines; prints "min_MBps median_MBps median_cpu_per_100MB"
  python3 -c "
import sys, statistics
rows=[tuple(map(float,l.split())) for l in sys.stdin if l.strip()]
rates=sorted($SIZE_MB/r[0] for r in rows)
cpu=statistics.median(r[1] for r in rows)*100/$SIZE_MB
print(f'{rates[0]:.2f} {statistics.median(rates):.2f} {cpu:.2f}')"
}
declare -A base
for dir in down up; do
  base[$dir]=$(for _ in $(seq "$RUNS"); do xfer $dir plain; done | stats)
done
echo "| mode | direction | min MB/s | median MB/s | vs plain ssh (median) | client CPU s / 100 MB | simulator CPU s / 100 MB |"
echo "|---|---|---:|---:|---:|---:|---:|"
for dir in down up; do
  read -r mn md _ <<<"${base[$dir]}"
  echo "| plain ssh (baseline) | $dir | $mn | $md | 1.00 | - | - |"
done
for mode in "unpaced:" "pace-ms 1:--pace-ms 1"; do
  label=${mode%%:*}; flags=${mode#*:}
  # shellcheck disable=SC2086
  start_sim $flags
  for dir in down up; do
    c0=$(sim_cpu)
    read -r mn md cpu <<<"$(for _ in $(seq "$RUNS"); do xfer $dir proxy; done | stats)"
    c1=$(sim_cpu)
    read -r _ bmd _ <<<"${base[$dir]}"
    simcpu=$(python3 -c "print(f'{($c1-$c0)*100/($SIZE_MB*$RUNS):.2f}')")
    echo "| stdio $label | $dir | $mn | $md | $(python3 -c "print(f'{$md/$bmd:.3f}')") | $cpu | $simcpu |"
  done
  stop_sim
done
[ ! -e "$work/FAILED" ] || { echo "stdio bench: a transfer was corrupted" >&2; exit 1; }
