#!/usr/bin/env python3
"""Load for bench/forward.sh: loopback peers and clients around a `forward`, every byte checked.
A failed check exits non-zero, so the quick run in CI asserts correctness, never speed.

    fwdload.py echo PORT_FILE              echo server on 127.0.0.1:0 (asyncio, many connections)
    fwdload.py pull HOST:PORT N SHA256     N parallel connections, each reads to EOF and must
                                           match SHA256; prints "bytes first_s all_s": seconds
                                           from the first byte to the last EOF, and from the
                                           first connect to the last EOF
    fwdload.py pipe SHA256 CMD...          the same for one CMD's stdout (its stdin stays open)
    fwdload.py latency HOST:PORT WARM N    connect, send one byte, read it back, close; N samples
                                           after WARM; prints "p50_ms p99_ms max_ms"
    fwdload.py idle HOST:PORT N PID        opens N connections, echoes through each, reads PID's
                                           VmRSS (KiB) while all are open and idle, echoes again;
                                           prints "failures rss_kib"
"""
import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time

TIMEOUT = 120  # a hang guard, never a measured limit


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def report_port(sock, path):
    with open(path + ".tmp", "w") as f:
        f.write(f"{sock.getsockname()[1]}\n")
    os.rename(path + ".tmp", path)


async def echo(port_file):
    async def one(r, w):
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except OSError:
            pass
        w.close()

    server = await asyncio.start_server(one, "127.0.0.1", 0, backlog=4096)
    report_port(server.sockets[0], port_file)
    await server.serve_forever()


def drain(read, want, marks, i):
    """Reads to EOF through `read`, records (first byte, EOF) times in marks[i]; checks SHA256."""
    h, n, first = hashlib.sha256(), 0, None
    while chunk := read(65536):
        first = first or time.perf_counter()
        h.update(chunk)
        n += len(chunk)
    marks[i] = (first, time.perf_counter(), n, h.hexdigest() == want)


def summary(start, marks):
    if not all(m and m[3] for m in marks):
        sys.exit(f"corrupted or short: {sum(1 for m in marks if not (m and m[3]))} of {len(marks)} streams")
    first, end = min(m[0] for m in marks), max(m[1] for m in marks)
    print(sum(m[2] for m in marks), f"{end - first:.4f}", f"{end - start:.4f}")


def pull(target, n, want):
    marks = [None] * n

    def one(i):
        s = socket.create_connection(addr(target), timeout=TIMEOUT)
        drain(s.recv, want, marks, i)
        s.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    summary(start, marks)


def pipe(want, cmd):
    marks = [None]
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    drain(p.stdout.read1, want, marks, 0)
    p.stdin.close()
    p.wait(TIMEOUT)
    summary(start, marks)


def latency(target, warm, n):
    def once():
        t = time.perf_counter()
        s = socket.create_connection(addr(target), timeout=TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"x")
        if s.recv(1) != b"x":
            sys.exit("the echo did not come back")
        dt = time.perf_counter() - t
        s.close()
        return dt * 1000

    for _ in range(warm):
        once()
    xs = sorted(once() for _ in range(n))
    print(f"{xs[len(xs) // 2]:.2f} {xs[max(0, -(-len(xs) * 99 // 100) - 1)]:.2f} {xs[-1]:.2f}")


def vmrss(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


async def idle(target, n, pid):
    host, port = addr(target)

    async def roundtrip(r, w, msg):
        w.write(msg)
        await w.drain()
        return await asyncio.wait_for(r.readexactly(len(msg)), TIMEOUT) == msg

    async def open_one(i):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
            return (r, w) if await roundtrip(r, w, f"open {i};".encode()) else None
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            return None

    async def again(i, c):
        try:
            return c is not None and await roundtrip(*c, f"still {i};".encode())
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            return False

    conns = await asyncio.gather(*(open_one(i) for i in range(n)))
    await asyncio.sleep(1)  # idle: let buffers settle before reading the RSS
    rss = vmrss(pid)
    ok = await asyncio.gather(*(again(i, c) for i, c in enumerate(conns)))
    for c in conns:
        if c:
            c[1].close()
    print(sum(1 for x in ok if not x), rss)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "echo":
        asyncio.run(echo(args[0]))
    elif cmd == "pull":
        pull(args[0], int(args[1]), args[2])
    elif cmd == "pipe":
        pipe(args[0], args[1:])
    elif cmd == "latency":
        latency(args[0], int(args[1]), int(args[2]))
    elif cmd == "idle":
        asyncio.run(idle(args[0], int(args[1]), int(args[2])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
