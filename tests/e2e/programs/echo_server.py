"""A plain stdlib-style echo server: only ``pilotsock.socket``, nothing else from pilotsock."""

import sys

import pilotsock.socket as socket

port = int(sys.argv[1])
count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
server = socket.socket(socket.AF_PILOT, socket.SOCK_STREAM)
server.bind(("", port))
server.listen()
print("ready", server.getsockname()[0], flush=True)
for _ in range(count):
    conn, peer = server.accept()
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
server.close()
