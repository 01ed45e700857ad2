"""A plain stdlib-style echo client: sends N bytes, reads them back, prints both SHA-256 digests."""

import hashlib
import json
import os
import sys
import threading
import time

import pilotsock.socket as socket

address, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
marker = sys.argv[4].encode() if len(sys.argv) > 4 else b""
payload = marker + os.urandom(size - len(marker))
sock = socket.socket(socket.AF_PILOT, socket.SOCK_STREAM)
sock.settimeout(30)
started = time.monotonic()
sock.connect((address, port))


def writer() -> None:
    view = memoryview(payload)
    for offset in range(0, len(view), 256 * 1024):
        sock.sendall(view[offset:offset + 256 * 1024])
    sock.shutdown(socket.SHUT_WR)


thread = threading.Thread(target=writer)
thread.start()
received = hashlib.sha256()
total = 0
while True:
    chunk = sock.recv(262144)
    if not chunk:
        break
    received.update(chunk)
    total += len(chunk)
thread.join()
sock.close()
print(json.dumps({"sent": hashlib.sha256(payload).hexdigest(), "received": received.hexdigest(),
                  "bytes": total, "seconds": time.monotonic() - started}))
