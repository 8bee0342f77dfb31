#!/usr/bin/env python3
"""git credential helper (resolver.md G2): relays `get` to the worker's credential
session over a Unix socket; ignores `store` and `erase`. It never sees the token
anywhere but in the answer it relays to git on stdout."""

import os
import socket
import sys


def main():
    if len(sys.argv) < 2 or sys.argv[1] != "get":
        sys.stdin.read()
        return 0
    path = os.environ.get("PYVAULTREF_CRED_SOCKET")
    nonce = os.environ.get("PYVAULTREF_CRED_NONCE")
    request = sys.stdin.buffer.read(65536)
    if not path or not nonce:
        return 0
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            if len(os.fsencode(path)) < 100:  # sun_path limit; see gitcred.with_short_path
                s.connect(path)
            else:
                fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
                try:
                    s.connect("/proc/self/fd/%d/%s" % (fd, os.path.basename(path)))
                finally:
                    os.close(fd)
            s.sendall(nonce.encode() + b"\n" + request)
            s.shutdown(socket.SHUT_WR)
            answer = b""
            while len(answer) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
    except OSError:
        return 0
    sys.stdout.buffer.write(answer)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
