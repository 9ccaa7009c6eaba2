#!/usr/bin/env bash
# SOCKS path benchmarks through `serve`: connect latency on a warm pool (p50/p99) and aggregate
# throughput of 8 parallel 20 MB downloads for pool sizes 1, 2, 4, 8, with the simulator pacing
# the agent like the real one (--pace-ms 1, ~1 MB/s per session). Everything on 127.0.0.1.
#   RUNS=3 bench/socks.sh [MB_PER_STREAM] [STREAMS] [POOL_SIZES...]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
MB=${1:-20}
STREAMS=${2:-8}
shift 2 2>/dev/null || true
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1 2 4 8)
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh
build_bin
start_sshd
mkdir -p "$work/www"
head -c $((MB * 1048576)) /dev/urandom > "$work/www/blob"
want=$(sha256sum < "$work/www/blob" | cut -d' ' -f1)
python3 - "$work/www" "$work/http.port" <<PY >/dev/null 2>&1 & pids+=($!)
$PY_REPORT_PORT
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
report_port(server.socket, sys.argv[2])
server.serve_forever()
PY
hport=$(wait_port_file "$work/http.port")
# A TCP sink for connect-latency probes.
python3 - "$work/sink.port" <<PY & pids+=($!)
$PY_REPORT_PORT
import socket, sys, threading
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(512)
report_port(s, sys.argv[1])
while True:
    c, _ = s.accept()
    threading.Thread(target=lambda c=c: (c.recv(1), c.close()), daemon=True).start()
PY
eport=$(wait_port_file "$work/sink.port")
start_sim --pace-ms 1

echo "| pool size | streams x MB | aggregate MB/s (min) | aggregate MB/s (median) | scaling vs pool 1 | connect p50 ms | connect p99 ms |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
base=""
for n in "${SIZES[@]}"; do
  write_pool_config "$work/config.yaml" $n state-$n
  start_serve "$work/config.yaml" "$n"
  socks=$socks_port
  # Warm every connection of the pool, then measure connect latency (SOCKS CONNECT → reply).
  lat=$(python3 - "$socks" "$eport" <<'PY'
import socket, struct, sys, time, statistics
socks, port = int(sys.argv[1]), int(sys.argv[2])
def once():
    t = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", socks)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"\x05\x01\x00"); assert s.recv(2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", port))
    r = s.recv(10); dt = time.perf_counter() - t
    assert r[1] == 0, r
    s.close(); return dt * 1000
for _ in range(20): once()
xs = sorted(once() for _ in range(300))
print(f"{statistics.median(xs):.2f} {xs[int(len(xs)*0.99)-1]:.2f}")
PY
)
  rates=()
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s.%N)
    curls=()
    for i in $(seq "$STREAMS"); do
      curl -s --socks5-hostname "127.0.0.1:$socks" "http://127.0.0.1:$hport/blob" -o "$work/out$i" & curls+=($!)
    done
    wait "${curls[@]}"
    t1=$(date +%s.%N)
    for i in $(seq "$STREAMS"); do
      [ "$(sha256sum < "$work/out$i" | cut -d' ' -f1)" = "$want" ] || { echo "stream $i corrupted" >&2; exit 1; }
    done
    rates+=("$(python3 -c "print($STREAMS*$MB/($t1-$t0))")")
  done
  read -r mn md <<<"$(python3 -c "import statistics; r=sorted(map(float,'${rates[*]}'.split())); print(f'{r[0]:.2f} {statistics.median(r):.2f}')")"
  [ -n "$base" ] || base=$md
  read -r p50 p99 <<<"$lat"
  echo "| $n | $STREAMS x $MB | $mn | $md | $(python3 -c "print(f'{$md/$base:.2f}')") | $p50 | $p99 |"
  kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
done
