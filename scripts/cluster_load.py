#!/usr/bin/env python3
"""Bounded load through the load balancer, as a careful client sends it.

Every logical request (verify, scan or detect, JSON base64 bodies) carries its own
Idempotency-Key and is retried with the same key on a connection failure or a documented
retryable answer (409, 429, 500, 502, 503, 504), honouring Retry-After, until it gets a final
answer. Prints one JSON object: per endpoint, how many logical requests ended 200 (the tokens
they should have cost) and every status seen, attempt by attempt.

Usage: cluster_load.py --base URL --key KEY --doc PATH --face PATH --seconds S --concurrency C
"""

import argparse
import base64
import collections
import http.client
import json
import random
import threading
import time
import urllib.parse
import uuid

RETRYABLE = {409, 429, 500, 502, 503, 504}
GIVE_UP_AFTER_S = 90


def post(base, path, key, idem_key, body, timeout=60):
    """One attempt: (status or None for a connection failure, headers, body bytes)."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={
                "content-type": "application/json",
                "x-api-key": key,
                "idempotency-key": idem_key,
            },
        )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    except (OSError, http.client.HTTPException):
        return None, {}, b""
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--doc", required=True)
    parser.add_argument("--face", required=True)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    doc = base64.b64encode(open(args.doc, "rb").read()).decode()
    face = base64.b64encode(open(args.face, "rb").read()).decode()
    bodies = {
        "/v1/identity/verify": json.dumps({"documentImage": doc, "faceImage": face}),
        "/v1/document/scan": json.dumps({"documentImage": doc}),
        "/v1/face/detect": json.dumps({"image": face}),
    }
    paths = list(bodies)
    lock = threading.Lock()
    answered = collections.Counter()  # path -> logical requests that ended 200
    unanswered = collections.Counter()  # path -> logical requests that never got a final answer
    statuses = collections.Counter()  # every attempt's status ("conn" = connection failure)
    replays = 0
    stop_at = time.monotonic() + args.seconds

    def worker(n):
        nonlocal replays
        rng = random.Random(args.seed * 1000 + n)
        while time.monotonic() < stop_at:
            path = rng.choice(paths)
            idem_key = str(uuid.UUID(int=rng.getrandbits(128)))
            give_up = time.monotonic() + GIVE_UP_AFTER_S
            final = None
            while time.monotonic() < give_up:
                status, headers, _ = post(args.base, path, args.key, idem_key, bodies[path])
                with lock:
                    statuses["conn" if status is None else str(status)] += 1
                if status is not None and status not in RETRYABLE:
                    final = status
                    if headers.get("idempotent-replayed") == "true":
                        with lock:
                            replays += 1
                    break
                wait = 0.3 + rng.random() * 0.4
                if status is not None:
                    try:
                        wait = max(wait, float(headers.get("retry-after", "0")))
                    except ValueError:
                        pass
                time.sleep(wait)
            with lock:
                if final == 200:
                    answered[path] += 1
                else:
                    unanswered[path if final is None else f"{path} {final}"] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(
        json.dumps(
            {
                "answered": answered,
                "unanswered": unanswered,
                "statuses": statuses,
                "replays": replays,
            }
        )
    )


if __name__ == "__main__":
    main()
