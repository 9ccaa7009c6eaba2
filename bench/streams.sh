#!/usr/bin/env bash
# Many concurrent SOCKS streams through one master (`serve`, pool of 2 over the simulator):
# N streams open at once, each echoing through the master for a while, every echo verified.
# Prints the master's peak RSS (VmHWM) and the number of failed streams.
#   bench/streams.sh [STREAMS] [SECONDS] [MODE]
# MODE trickle (default): a few bytes each way once a second per stream.
# MODE active: 96 bytes each way four times a second per stream (~400 B/s), the load at which
# per-stream buffers show in the master's memory.
# Environment knobs: INTERVAL (seconds between echoes), PAD (bytes per echo), RAMP (seconds
# between stream starts, so streams open while others run; default 0: all at once), BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
SECS=${2:-10}
MODE=${3:-trickle}
case "$MODE" in
  trickle) INTERVAL=${INTERVAL:-1.0} PAD=${PAD:-0} ;;
  active) INTERVAL=${INTERVAL:-0.25} PAD=${PAD:-96} ;;
  *) echo "unknown mode $MODE; use trickle or active" >&2; exit 2 ;;
esac
RAMP=${RAMP:-0}   # seconds between stream starts (0: all at once)
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh
build_bin
ulimit -n 65536 2>/dev/null || true
start_sshd
start_sim
python3 - "$work/echo.port" <<PY & pids+=($!)
$PY_REPORT_PORT
import socket, sys, threading
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4096)
report_port(s, sys.argv[1])
def echo(c):
    try:
        while True:
            b = c.recv(4096)
            if not b: break
            c.sendall(b)
    except OSError: pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
PY
eport=$(wait_port_file "$work/echo.port")
write_pool_config "$work/config.yaml" 2
start_serve "$work/config.yaml" main
socks=$socks_port
base_rss=$(awk '/VmRSS/ {print $2}' "/proc/$serve_pid/status")
result=$(python3 - "$socks" "$eport" "$N" "$SECS" "$INTERVAL" "$PAD" "$RAMP" <<'PY'
import asyncio, socket, struct, sys, time
socks, port, n, secs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
interval, pad, ramp = float(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
async def stream(i):
    await asyncio.sleep(i * ramp)
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", socks), 30)
        w.write(b"\x05\x01\x00"); await w.drain()
        assert await asyncio.wait_for(r.readexactly(2), 30) == b"\x05\x00"
        w.write(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", port)); await w.drain()
        rep = await asyncio.wait_for(r.readexactly(10), 60)
        if rep[1] != 0: return False
        end = time.monotonic() + secs
        k = 0
        while time.monotonic() < end:
            msg = f"{i}:{k};".encode().ljust(pad, b"."); k += 1
            w.write(msg); await w.drain()
            if await asyncio.wait_for(r.readexactly(len(msg)), 30) != msg: return False
            await asyncio.sleep(interval)
        w.close()
        return True
    except Exception:
        return False
async def main():
    t = time.monotonic()
    res = await asyncio.gather(*(stream(i) for i in range(n)))
    print(sum(1 for x in res if not x), f"{time.monotonic()-t:.1f}")
asyncio.run(main())
PY
)
read -r failures elapsed <<<"$result"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$serve_pid/status")
echo "| streams | seconds | failures | master RSS before (MiB) | master peak RSS (MiB) | wall s | mode |"
echo "|---:|---:|---:|---:|---:|---:|---|"
echo "| $N | $SECS | $failures | $(python3 -c "print(f'{$base_rss/1024:.1f}')") | $(python3 -c "print(f'{$hwm/1024:.1f}')") | $elapsed | $MODE |"
