#!/usr/bin/env python3
"""Slow-body probe (issue 28): open N connections from 20 loopback
addresses (127.0.1.1-20) that send a publish or call request's headers and
then trickle its body a byte a second, with or without a key; meanwhile
search from 127.0.0.1. Prints the server's open fds and RSS before, during
and after, and the searches' p50/p99.
Usage: slow_body.py PID URL [N] [SECONDS] [KEY]"""
import os
import socket
import sys
import threading
import time
import urllib.request
from urllib.parse import urlparse


def searches(url, stop, out):
    i = 0
    while not stop.is_set():
        t = time.perf_counter()
        try:
            urllib.request.urlopen(f"{url}/v1/search?q=bert+{i % 50}&mode=text", timeout=5).read()
            out.append((time.perf_counter() - t) * 1e3)
        except Exception:
            out.append(float("inf"))
        i += 1
        time.sleep(0.05)


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main():
    pid, url = int(sys.argv[1]), urlparse(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    seconds = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    key = sys.argv[5] if len(sys.argv) > 5 else None
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    print(f"before: fds {fds(pid)}, rss {rss_mb(pid):.0f} MB")
    socks = []
    for i in range(n):
        try:
            s = socket.create_connection(
                (url.hostname, url.port), timeout=5, source_address=(f"127.0.1.{i % 20 + 1}", 0)
            )
        except OSError:
            continue
        path = "/v1/models" if i % 2 == 0 else "/v1/calls"
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
            f"Content-Length: 1000000\r\n\r\n{{".encode()
        )
        s.setblocking(False)
        socks.append(s)
    stop, lat = threading.Event(), []
    th = threading.Thread(target=searches, args=(sys.argv[2].rstrip("/"), stop, lat))
    th.start()
    peak_fds, peak_rss = 0, 0.0
    open_after = n
    for t in range(seconds):
        time.sleep(1)
        still = 0
        for s in socks:
            try:
                s.send(b" ")
                still += 1
            except OSError:
                pass
        open_after = still
        peak_fds, peak_rss = max(peak_fds, fds(pid)), max(peak_rss, rss_mb(pid))
    print(f"during {seconds} s with {n} trickling connections ({'with' if key else 'without'} a key): "
          f"peak fds {peak_fds}, peak rss {peak_rss:.0f} MB; still open at the end {open_after}")
    stop.set()
    th.join()
    lat.sort()
    if lat:
        q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
        print(f"searches from another address meanwhile: {len(lat)}, p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms")
    for s in socks:
        s.close()
    time.sleep(2)
    print(f"after closing: fds {fds(pid)}, rss {rss_mb(pid):.0f} MB")


if __name__ == "__main__":
    main()
