#!/usr/bin/env python3
"""Hostile-client floods against a running hubsearch, loopback only, bounded
in count and time: slowloris connections from many loopback source addresses
(127.0.0.2 ...) that never finish their headers, trickling a byte a second.
Runs for --seconds, then closes everything. Prints how many connections it
held open at the end of the run (the server should have cut them off)."""
import argparse
import asyncio
import time


async def slow(host, port, src, stop_at, stats):
    try:
        r, w = await asyncio.open_connection(host, port, local_addr=(src, 0))
    except OSError:
        stats["refused"] += 1
        return
    stats["opened"] += 1
    try:
        w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        await w.drain()
        while time.monotonic() < stop_at:
            w.write(b"X")
            await w.drain()
            try:
                data = await asyncio.wait_for(r.read(1), timeout=1.0)
                if data == b"" or data.startswith(b"H"):
                    stats["cut"] += 1
                    return
            except asyncio.TimeoutError:
                pass
        stats["held"] += 1
    except (ConnectionError, OSError):
        stats["cut"] += 1
    finally:
        w.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--connections", type=int, default=4000)
    ap.add_argument("--sources", type=int, default=40, help="loopback source addresses")
    ap.add_argument("--seconds", type=float, default=15)
    a = ap.parse_args()
    stop_at = time.monotonic() + a.seconds
    stats = {"opened": 0, "refused": 0, "cut": 0, "held": 0}
    tasks = []
    for i in range(a.connections):
        src = f"127.0.0.{2 + i % a.sources}"
        tasks.append(asyncio.create_task(slow("127.0.0.1", a.port, src, stop_at, stats)))
        if i % 200 == 199:
            await asyncio.sleep(0.05)
    await asyncio.gather(*tasks)
    print(f"slowloris: {a.connections} attempted from {a.sources} addresses; "
          f"{stats['opened']} opened, {stats['refused']} refused, "
          f"{stats['cut']} cut off by the server, {stats['held']} still open after {a.seconds:.0f} s")


asyncio.run(main())
