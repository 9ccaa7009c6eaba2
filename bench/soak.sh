#!/usr/bin/env bash
# Soak: bulk data through `stdio` and through SOCKS over a pool while the simulator recycles
# WebSockets every few seconds and drops, duplicates and reorders frames. Everything on 127.0.0.1.
# Fails on any checksum mismatch, on a transfer that makes no progress for STALL_SECS, or on a
# run that survived no recycle (the faults did not happen, so nothing was shown).
#   bench/soak.sh [MB_EACH]          default 1024: MB_EACH down + MB_EACH up through stdio, and
#                                    MB_EACH through SOCKS (4 parallel downloads over a pool of 2)
# Knobs (env): KILL_EVERY=3 (seconds between recycles), FAULT=0.01 (rate of each of drop, dup and
# reorder: 3 % of frames in all), SEED=1, STALL_SECS=60, BIN=path (skip the build).
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-1024}
KILL_EVERY=${KILL_EVERY:-3}
FAULT=${FAULT:-0.01}
SEED=${SEED:-1}
STALL_SECS=${STALL_SECS:-60}
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh
build_bin
start_sshd

# One 64 MiB random block; every stream is that block repeated, so 1 GB needs no 1 GB file.
BLOCK_MB=64
reps=$(( (MB + BLOCK_MB - 1) / BLOCK_MB ))
head -c $((BLOCK_MB * 1048576)) /dev/urandom > "$work/block"
repeat_block() { for _ in $(seq "$1"); do cat "$work/block"; done; }
want=$(repeat_block "$reps" | sha256sum | cut -d' ' -f1)
bytes=$((reps * BLOCK_MB * 1048576))

start_sim --seed "$SEED" --kill-every-secs "$KILL_EVERY" \
  --drop "$FAULT" --duplicate "$FAULT" --reorder "$FAULT" --stats-file "$work/sim-stats.json"

check() { # $1 = label, $2 = file holding the checksum
  local got
  got=$(cut -d' ' -f1 < "$2")
  [ "$got" = "$want" ] || { echo "$1: checksum mismatch (got $got, want $want)" >&2; exit 1; }
}

SSH=(ssh -F /dev/null -i "$work/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o LogLevel=ERROR -o BatchMode=yes -o ProxyCommand="$BIN stdio -v %h -p %p")
target="$(id -un)@i-0123456789abcdef0"

# Local ends of the stdio transfers: a source that writes the block N times and a sink that hashes
# what arrives; both keep a byte count in a progress file so a stall is seen while it happens.
cat > "$work/ends.py" <<'PY'
import hashlib, os, sys, time
mode, progress = sys.argv[1], sys.argv[2]
def report(n):
    with open(progress + ".tmp", "w") as f: f.write(str(n))
    os.replace(progress + ".tmp", progress)
n, last = 0, 0.0
if mode == "source":
    block = open(sys.argv[3], "rb").read()
    for _ in range(int(sys.argv[4])):
        sys.stdout.buffer.write(block); sys.stdout.buffer.flush(); n += len(block); report(n)
else:
    h = hashlib.sha256()
    while chunk := sys.stdin.buffer.read1(1 << 20):
        h.update(chunk); n += len(chunk)
        if time.monotonic() - last > 0.5: report(n); last = time.monotonic()
    report(n)
    open(sys.argv[3], "w").write(h.hexdigest() + "\n")
PY
# watch FILE... : fails the run when none of the progress FILEs changed for STALL_SECS.
watch_progress() {
  local last="" same=0 now
  while sleep 1; do
    now=$(stat -c "%s %.9Y %i" "$@" 2>/dev/null | md5sum)
    if [ "$now" = "$last" ]; then same=$((same + 1)); else same=0; last=$now; fi
    if [ "$same" -ge "$STALL_SECS" ]; then
      echo "stall: no progress for $STALL_SECS s" >&2; touch "$work/STALLED"; kill "${pids[@]}" 2>/dev/null; return
    fi
  done
}
row() { # path direction bytes t0 t1
  echo "| $1 | $2 | $(($3 / 1048576)) | $(python3 -c "print(f'{$5-$4:.1f}')") | $(python3 -c "print(f'{$3/1048576/($5-$4):.1f}')") | ok |"
}

echo "| path | direction | MB | seconds | MB/s | checksum |"
echo "|---|---|---:|---:|---:|---|"
t0=$(date +%s.%N)
watch_progress "$work/down.progress" & wp=$!
"${SSH[@]}" "$target" "for i in \$(seq $reps); do cat $work/block; done" 2>"$work/stdio-down.err" \
  | python3 "$work/ends.py" sink "$work/down.progress" "$work/down.sum" || true
kill "$wp" 2>/dev/null || true
t1=$(date +%s.%N)
[ ! -e "$work/STALLED" ] || exit 1
check "stdio down" "$work/down.sum"
row stdio down "$bytes" "$t0" "$t1"

t0=$(date +%s.%N)
watch_progress "$work/up.progress" & wp=$!
python3 "$work/ends.py" source "$work/up.progress" "$work/block" "$reps" \
  | "${SSH[@]}" "$target" sha256sum > "$work/up.sum" 2>"$work/stdio-up.err" || true
kill "$wp" 2>/dev/null || true
t1=$(date +%s.%N)
[ ! -e "$work/STALLED" ] || exit 1
check "stdio up" "$work/up.sum"
row stdio up "$bytes" "$t0" "$t1"

# SOCKS: an HTTP server streams the repeated block; 4 parallel downloads over a pool of 2.
STREAMS=4
per=$(( (reps + STREAMS - 1) / STREAMS ))
want_socks=$(repeat_block "$per" | sha256sum | cut -d' ' -f1)
python3 - "$work/block" "$per" "$work/http.port" <<PY >/dev/null 2>&1 & pids+=($!)
$PY_REPORT_PORT
import http.server, sys
block = open(sys.argv[1], "rb").read(); reps = int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", str(len(block) * reps)); self.end_headers()
        for _ in range(reps): self.wfile.write(block)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
report_port(s.socket, sys.argv[3]); s.serve_forever()
PY
hport=$(wait_port_file "$work/http.port")
write_pool_config "$work/config.yaml" 2
start_serve "$work/config.yaml" soak
t0=$(date +%s.%N)
curls=()
for i in $(seq "$STREAMS"); do
  curl -sS --fail --socks5-hostname "127.0.0.1:$socks_port" "http://127.0.0.1:$hport/blob" -o "$work/socks$i" & curls+=($!)
done
outs=()
for i in $(seq "$STREAMS"); do outs+=("$work/socks$i"); done
watch_progress "${outs[@]}" & wp=$!
rc=0
for c in "${curls[@]}"; do wait "$c" || rc=1; done
kill "$wp" 2>/dev/null || true
t1=$(date +%s.%N)
[ ! -e "$work/STALLED" ] || exit 1
[ "$rc" = 0 ] || { echo "a SOCKS download failed" >&2; tail -20 "$work/serve-soak.log" >&2; exit 1; }
for i in $(seq "$STREAMS"); do
  [ "$(sha256sum < "$work/socks$i" | cut -d' ' -f1)" = "$want_socks" ] || { echo "SOCKS stream $i: checksum mismatch" >&2; exit 1; }
done
sb=$((STREAMS * per * BLOCK_MB * 1048576))
row "SOCKS, pool of 2" "down, $STREAMS streams" "$sb" "$t0" "$t1"
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true

# The simulator writes its per-session counters on SIGTERM.
kill -TERM "$sim_pid"; wait "$sim_pid" 2>/dev/null || true
python3 - "$work/sim-stats.json" "$work"/stdio-*.err <<'PY'
import json, re, sys
stats = json.load(open(sys.argv[1]))["sessions"]
f = {k: sum(s["faults"][k] for s in stats) for k in ("kills", "dropped", "duplicated", "reordered")}
resumes = sum(s["client_reconnects"] for s in stats)
ansi = re.compile(r"\x1b\[[0-9;]*m")
summaries = [ansi.sub("", l).strip() for p in sys.argv[2:] for l in open(p) if "summary:" in l]
print()
print(f"simulator: {len(stats)} sessions, {f['kills']} WebSocket recycles, {resumes} client resumes; "
      f"frames dropped {f['dropped']}, duplicated {f['duplicated']}, reordered {f['reordered']}")
for s in summaries: print("stdio " + s)
if f["kills"] == 0 or resumes == 0:
    sys.exit("soak: no recycle happened, so the run proves nothing (raise MB_EACH or lower KILL_EVERY)")
PY
