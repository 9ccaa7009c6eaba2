#!/usr/bin/env python3
"""A minimal inetd for loopback benches: binds 127.0.0.1:0 itself, keeps the listener, writes
the port it got to PORT_FILE (through a rename, so a reader never sees half a number), and runs
COMMAND... once per accepted connection with the socket as its stdin and stdout, e.g.
`sshd -i`. No bind-then-drop port race.
    inetd.py PORT_FILE COMMAND [ARGS...]
"""
import os
import signal
import socket
import subprocess
import sys


def main():
    port_file, cmd = sys.argv[1], sys.argv[2:]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    with open(port_file + ".tmp", "w") as f:
        f.write(f"{listener.getsockname()[1]}\n")
    os.rename(port_file + ".tmp", port_file)
    children = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            conn, _ = listener.accept()
            children = [c for c in children if c.poll() is None]
            children.append(subprocess.Popen(cmd, stdin=conn, stdout=conn))
            conn.close()
    finally:
        for c in children:
            c.kill()


if __name__ == "__main__":
    main()
