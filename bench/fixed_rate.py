#!/usr/bin/env python3
"""Fixed-rate HTTP/1.1 keep-alive load for bench/run.sh (Debian's wrk has no -R, and wrk2 is not packaged).

A Python client: RATE requests per second spread over CONNECTIONS threads, each thread owning one keep-alive
http.client connection and sending on its own fixed schedule (thread i sends at t0 + i/RATE + k*CONNECTIONS/RATE).
Latency is the service time of each request: from just before the request is written until the whole body has
been read. A send that starts more than 1 ms after its scheduled time is counted as late (the client, not the
server, fell behind); a late send is made at once, without catching up in a burst.

The client's own overhead (Python, the GIL, the threads) is in every figure, so only the difference between two
targets measured the same way means anything. Prints one JSON object on stdout.

Usage: fixed_rate.py URL [--rate 500] [--duration 10] [--connections 4] [--warmup 1] [-H 'Name: value']...
"""

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    # Nearest rank.
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def worker(index, args, url, headers, start_at, results):
    latencies = []
    late = 0
    errors = 0
    bad_status = 0
    sent = 0
    interval = args.connections / args.rate
    warm_until = start_at + args.warmup
    end_at = warm_until + args.duration
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=10)
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    k = 0
    while True:
        scheduled = start_at + index / args.rate + k * interval
        k += 1
        if scheduled >= end_at:
            break
        now = time.perf_counter()
        if scheduled > now:
            time.sleep(scheduled - now)
        t0 = time.perf_counter()
        measuring = scheduled >= warm_until
        if measuring and t0 - scheduled > 0.001:
            late += 1
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=10)
            if measuring:
                errors += 1
                sent += 1
            continue
        t1 = time.perf_counter()
        if measuring:
            sent += 1
            latencies.append(t1 - t0)
            if status >= 400:
                bad_status += 1
    conn.close()
    results[index] = (latencies, late, errors, bad_status, sent)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second in total")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections (one thread each)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds at the same rate, not measured")
    parser.add_argument("-H", "--header", action="append", default=[], help="extra header, 'Name: value'")
    args = parser.parse_args()

    url = urllib.parse.urlsplit(args.url)
    if url.scheme != "http":
        sys.exit("only http:// URLs")
    headers = {}
    for header in args.header:
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()

    results = [None] * args.connections
    start_at = time.perf_counter() + 0.2
    threads = [
        threading.Thread(target=worker, args=(i, args, url, headers, start_at, results), daemon=True)
        for i in range(args.connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    latencies = sorted(x for r in results for x in r[0])
    late = sum(r[1] for r in results)
    errors = sum(r[2] for r in results)
    bad_status = sum(r[3] for r in results)
    sent = sum(r[4] for r in results)
    ms = lambda seconds: round(seconds * 1000.0, 3)  # noqa: E731
    print(
        json.dumps(
            {
                "url": args.url,
                "rate": args.rate,
                "duration_s": args.duration,
                "connections": args.connections,
                "requests": sent,
                "achieved_rps": round(sent / args.duration, 1),
                "errors": errors,
                "status_4xx_5xx": bad_status,
                "late_sends": late,
                "p50_ms": ms(percentile(latencies, 50)),
                "p90_ms": ms(percentile(latencies, 90)),
                "p99_ms": ms(percentile(latencies, 99)),
                "max_ms": ms(latencies[-1]) if latencies else None,
            }
        )
    )


if __name__ == "__main__":
    main()
