"""Another local user attacking `gatehouse run`, for tests/isolation.rs. Run as `nobody` (setpriv), with
Debian's /usr/bin/python3 and the standard library only.

    local_user.py scan SKIP_PORT MARKER     try every listening loopback port (from /proc/net/tcp*) with
                                            forged identity headers; print the ports whose answer has MARKER
    local_user.py squat PORT MARKER SECS    bind PORT as soon as it is free and answer every request with
                                            MARKER for SECS seconds; print "bound" once listening
"""

import json
import socket
import sys
import time

FORGED = (
    "X-Gatehouse-User: admin\r\nX-Gatehouse-Roles: admin\r\nX-Gatehouse-Email: admin@example.com\r\n"
    "X-Gatehouse-Logged-In: true\r\n"
)


def listening_ports():
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def ask(port, path):
    for host in ("127.0.0.1", "::1"):
        try:
            with socket.create_connection((host, port), timeout=1) as connection:
                connection.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{FORGED}Connection: close\r\n\r\n".encode()
                )
                answer = b""
                while len(answer) < 65536:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                return answer.decode("latin-1")
        except OSError:
            continue
    return ""


def scan(skip, marker):
    reached = []
    for port in listening_ports():
        if port == skip:
            continue
        if marker in ask(port, "/marker.txt"):
            reached.append(port)
    print(json.dumps({"uid": __import__("os").getuid(), "ports": listening_ports(), "reached": reached}))


def squat(port, marker, seconds):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    deadline = time.monotonic() + seconds
    while True:
        try:
            server.bind(("127.0.0.1", port))
            break
        except OSError:
            if time.monotonic() > deadline:
                print("never bound", flush=True)
                return
            time.sleep(0.001)
    server.listen(64)
    server.settimeout(0.2)
    print("bound", flush=True)
    body = marker.encode()
    while time.monotonic() < deadline:
        try:
            connection, _ = server.accept()
        except socket.timeout:
            continue
        with connection:
            connection.settimeout(1)
            try:
                connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
            except OSError:
                pass


if __name__ == "__main__":
    if sys.argv[1] == "scan":
        scan(int(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "squat":
        squat(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
