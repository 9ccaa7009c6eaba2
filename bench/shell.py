#!/usr/bin/env python3
"""Keystroke echo latency of `session-proxy shell`, driven from a real pty.

  bench/shell.py SAMPLES BIN TARGET

Runs `BIN shell TARGET` on a new pty (so it goes into raw mode as it would for a user),
waits until the remote side echoes, then types one printable byte at a time and times each
until that byte comes back on the pty. The remote side is expected to echo every byte once
(bench/shell.sh runs `stty raw -echo; exec cat` there). Prints one line:
  samples p50_ms p99_ms min_ms max_ms
"""
import os
import pty
import select
import signal
import statistics
import sys
import time

GUARD = 60.0  # hang guard (seconds) for any single wait; never a measurement bound


def read_until(fd, want, deadline):
    """Reads from fd until `want` (bytes) has been seen; returns everything read."""
    got = b""
    while want not in got:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SystemExit(f"no echo of {want!r} within {GUARD} s; got {got[-200:]!r}")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise SystemExit(f"the shell ended; last output {got[-200:]!r}")
            got += chunk
    return got


def drain(fd, quiet):
    """Reads until nothing arrives for `quiet` seconds."""
    while select.select([fd], [], [], quiet)[0]:
        if not os.read(fd, 4096):
            return


def main():
    samples, binary, target = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(binary, [binary, "shell", target])
    try:
        # Ready when a probe comes back; before the remote `stty raw` the pty may echo it too.
        deadline = time.monotonic() + GUARD
        while True:
            os.write(fd, b"R")
            try:
                read_until(fd, b"R", min(deadline, time.monotonic() + 1.0))
                break
            except SystemExit:
                if time.monotonic() > deadline:
                    raise
        drain(fd, 1.0)
        lat = []
        alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789"
        for i in range(samples):
            ch = alphabet[i % len(alphabet) : i % len(alphabet) + 1]
            t0 = time.perf_counter()
            os.write(fd, ch)
            got = read_until(fd, ch, time.monotonic() + GUARD)
            lat.append((time.perf_counter() - t0) * 1000)
            if got != ch:
                raise SystemExit(f"expected exactly {ch!r} back, got {got!r}")
        q = statistics.quantiles(lat, n=100, method="inclusive")
        print(f"{len(lat)} {q[49]:.2f} {q[98]:.2f} {min(lat):.2f} {max(lat):.2f}")
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
