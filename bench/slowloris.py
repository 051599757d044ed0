"""Slow clients against `digestif serve`: N connections that send a request head one byte
every half second and never finish it, while a real reader asks for their unsubscribe
page (through the handler pool) every 50 ms. Prints the real requests' latencies.

    python3 bench/slowloris.py HOST PORT N SECONDS PATH
"""
import http.client
import socket
import sys
import threading
import time

host, port, n, secs, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000
slow = [socket.create_connection((host, port)) for _ in range(n)]
stop = time.time() + secs


def drip():
    i = 0
    while time.time() < stop:
        for s in slow:
            try:
                s.send(head[i:i + 1])
            except OSError:
                pass  # cut off by the server: what it should do
        i = (i + 1) % len(head)
        time.sleep(0.5)


threading.Thread(target=drip, daemon=True).start()
time.sleep(1)
latencies = []
while time.time() < stop - 0.5:
    t = time.time()
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    c.close()
    if r.status != 200:
        sys.exit(f"a real request got {r.status}")
    latencies.append((time.time() - t) * 1000)
    time.sleep(0.05)
latencies.sort()
p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
print(f"{len(latencies)} {latencies[len(latencies) // 2]:.1f} {p99:.1f} {latencies[-1]:.1f}")
