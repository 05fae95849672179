"""Slow clients against a running Gatehouse: N connections that send a request head announcing a body and
then stall (or trickle one byte every few seconds), as in the attack of issue 14. Prints, every second, how
many of them the server still holds open and the server's RSS, then a summary.

    python3 bench/slow_clients.py --port 8501 --pid PID [--count 10000] [--path /_gatehouse/login]
                                  [--trickle SECONDS] [--seconds 30]

Used by bench/slow_clients.sh, which starts a release Gatehouse and runs the scenarios.
"""

import argparse
import asyncio
import json
import resource
import time


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def stalled_client(port, path, trickle, stats):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        stats["refused"] += 1
        return
    stats["open"] += 1
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\n"
    )
    try:
        writer.write(head.encode())
        await writer.drain()
        first = None
        while True:
            if trickle:
                try:
                    data = await asyncio.wait_for(reader.read(4096), timeout=trickle)
                except asyncio.TimeoutError:
                    writer.write(b"x")
                    await writer.drain()
                    continue
            else:
                data = await reader.read(4096)
            if not data:
                break
            if first is None:
                first = data.split(b" ", 2)[1].decode(errors="replace") if b" " in data else "?"
                stats["status"][first] = stats["status"].get(first, 0) + 1
    except (OSError, ConnectionError):
        pass
    finally:
        stats["open"] -= 1
        stats["closed"] += 1
        writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--path", default="/_gatehouse/login")
    parser.add_argument("--trickle", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    stats = {"open": 0, "closed": 0, "refused": 0, "status": {}}
    rss_before = rss_mib(args.pid)
    started = time.monotonic()
    tasks = []
    for _ in range(args.count):
        tasks.append(asyncio.create_task(stalled_client(args.port, args.path, args.trickle, stats)))
        if len(tasks) % 500 == 0:
            await asyncio.sleep(0)
    peak = rss_before
    timeline = []
    while time.monotonic() - started < args.seconds:
        await asyncio.sleep(1)
        rss = rss_mib(args.pid)
        peak = max(peak, rss)
        timeline.append((round(time.monotonic() - started), stats["open"], round(rss, 1)))
        print(f"  t={timeline[-1][0]:>3}s  held open: {stats['open']:>6}  RSS {rss:7.1f} MiB", flush=True)
        if stats["open"] == 0 and stats["closed"] + stats["refused"] >= args.count:
            break
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({
        "count": args.count,
        "refused_at_connect": stats["refused"],
        "answers": stats["status"],
        "rss_mib_before": round(rss_before, 1),
        "rss_mib_peak": round(peak, 1),
        "rss_mib_end": round(rss_mib(args.pid), 1),
        "held_open_at_end": timeline[-1][1] if timeline else None,
        "seconds_until_none_held": next((t for t, held, _ in timeline if held == 0), None),
    }))


if __name__ == "__main__":
    asyncio.run(main())
