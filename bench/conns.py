"""bench/conns.py - the gateway holding many connections: latency of normal
requests (GET /readyz, a round trip to the service) with nothing else open,
with 10,000 idle keep-alive connections, and with 2,000 clients sending a
byte a second; and the gateway's private memory (RssAnon) meanwhile.
Prints KEY<TAB>VALUE lines for bench/report.py.

    python3 bench/conns.py GATEWAY_PORT GATEWAY_PID [IDLE] [SLOW]
"""
import os
import resource
import socket
import statistics
import sys
import time

REQ = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"
PARK_S = float(os.environ.get("EVENTS_HTTP_PARK_AFTER_S", "2"))


def rss_anon_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def probe(port, n=50):
    """n requests, each on a new connection; milliseconds."""
    ms = []
    for _ in range(n):
        t = time.monotonic()
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        assert data.startswith(b"HTTP/1.1 200"), data[:80]
        ms.append((time.monotonic() - t) * 1000)
        time.sleep(0.01)
    ms.sort()
    return statistics.median(ms), ms[-1]


def put(key, value):
    print(f"{key}\t{value}")


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n_idle = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    n_slow = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n_idle = min(n_idle, hard - 200)
    n_slow = min(n_slow, hard - 200)

    p50, worst = probe(port)
    put("conns.none.p50", f"{p50:.3f}")
    put("conns.none.max", f"{worst:.3f}")
    put("conns.none.rss_anon", rss_anon_kib(pid))

    # Idle keep-alive: each connection has been served once, then waits.
    idle = []
    for _ in range(n_idle):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(REQ)
        idle.append(s)
    for s in idle:
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    # At once, every connection is still in libmicrohttpd, with its pool;
    # after the park delay (EVENTS_HTTP_PARK_AFTER_S) the idle ones are not.
    put("conns.idle.rss_anon_at_once", rss_anon_kib(pid))
    time.sleep(PARK_S + 1.5)
    p50, worst = probe(port)
    put("conns.idle.n", len(idle))
    put("conns.idle.p50", f"{p50:.3f}")
    put("conns.idle.max", f"{worst:.3f}")
    put("conns.idle.rss_anon", rss_anon_kib(pid))
    for s in idle[:100]:
        s.sendall(REQ)
    for s in idle[:100]:
        assert s.recv(4096).startswith(b"HTTP/1.1 200"), "a parked connection was not served"
    put("conns.idle.served_again", 100)
    for s in idle:
        s.close()
    time.sleep(1)

    # Slow clients: a byte a second each, never a whole request in time.
    slow = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n_slow)]
    for s in slow:
        s.setblocking(False)
    ms = []
    for i in range(5):
        t = time.monotonic()
        for s in slow:
            try:
                s.send(REQ[i:i + 1])
            except OSError:
                pass
        p50, worst = probe(port, 10)
        ms.append((p50, worst))
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
    put("conns.slow.n", len(slow))
    put("conns.slow.p50", f"{statistics.median(m[0] for m in ms):.3f}")
    put("conns.slow.max", f"{max(m[1] for m in ms):.3f}")
    put("conns.slow.rss_anon", rss_anon_kib(pid))
    for s in slow:
        s.close()


if __name__ == "__main__":
    main()
