"""What one API request and one watch event cost a CPython client over loopback: the
operator's client beside the least any CPython client can spend.

Run from the repository root (``PYTHONPATH`` chooses whose ``kube`` is measured)::

    .venv/bin/python benchmarks/request_floor.py                  # 3,000 each, 3 rounds
    .venv/bin/python benchmarks/request_floor.py --requests-per-run 9.1 --events-per-run 10

Why: the soak target is ≤ 2 ms of operator CPU per run (issue #11), and a run costs the
operator a fixed number of requests (a pod create, three status patches, its Events, its
deletion by the history: ``soak.py`` counts them) and of watch events (the run's and its
pod's). This measures the client's side of each alone — the server is a plain ``aiohttp``
application in a child process answering a FlowRun-sized JSON body (1.6 kB) to every
request, so none of its work is counted — in this process's CPU time, user and system
(on loopback the kernel's TCP work for both ends is charged largely to the sender):

* ``kube get`` / ``kube patch_status``: sequential calls of
  :class:`headwater_operator.kube.Kube`, the operator's client (aiohttp, retries,
  metrics, JSON);
* ``raw get``: the same GET through a bare ``asyncio.Protocol`` — prebuilt request bytes,
  ``Content-Length`` framing, ``json.loads`` — with no HTTP library at all: a floor no
  CPython HTTP/1.1 client goes below;
* ``kube watch event``: one event of a ``Kube.watch`` stream (chunked lines, parsed),
  each sent in a write of its own 0.5 ms after the last, as they reach a busy operator;
* ``raw watch event``: the same stream read by a bare protocol that splits lines and
  ``json.loads`` each.

It prints, per round and best of the rounds, CPU µs per request or event, and the floor
of one run: ``--requests-per-run`` × raw get + ``--events-per-run`` × raw watch event —
the CPU a run would cost a CPython operator that did nothing but send its requests and
read its watch events, before any decision, cache, Event text or metric.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from headwater_operator import kube

FLOWRUN = {
    "apiVersion": "headwater.dev/v1", "kind": "FlowRun",
    "metadata": {"name": "nightly-1772406000", "namespace": "default",
                 "uid": "4b7c0d6e-2f0a-4f5e-9d7b-1c2d3e4f5a6b", "resourceVersion": "123456",
                 "generation": 1, "creationTimestamp": "2026-12-08T02:00:00Z",
                 "labels": {"headwater.dev/deployment": "nightly",
                            "headwater.dev/schedule": "daily",
                            "app.kubernetes.io/managed-by": "headwater"},
                 "ownerReferences": [{"apiVersion": "headwater.dev/v1", "kind": "Deployment",
                                      "name": "nightly", "uid": "0" * 36,
                                      "controller": True}]},
    "spec": {"deploymentRef": {"name": "nightly"}, "trigger": "schedule",
             "scheduledTime": "2026-12-08T02:00:00Z",
             "parameters": {f"param_{i}": f"value-{i}" * 3 for i in range(12)}},
    "status": {"phase": "Running", "attempts": 1, "podName": "nightly-1772406000-1",
               "startTime": "2026-12-08T02:00:01Z", "observedGeneration": 1,
               "conditions": [{"type": kind, "status": "True", "reason": "PodRunning",
                               "message": "the flow-run pod is running " * 3,
                               "lastTransitionTime": "2026-12-08T02:00:01Z"}
                              for kind in ("Ready", "PodScheduled", "Started")]},
}

SERVER = r'''
import asyncio, json, sys
from aiohttp import web

body = sys.stdin.buffer.read()
event = json.dumps({"type": "MODIFIED", "object": json.loads(body)}).encode() + b"\n"

async def answer(request):
    await request.read()
    if request.query.get("watch"):
        count = int(request.query.get("events") or request.headers.get("X-Events", "0"))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for _ in range(count):  # one event a write, spaced as a busy operator sees them
            await response.write(event)
            await asyncio.sleep(0.0005)
        await response.write_eof()
        return response
    return web.Response(body=body, content_type="application/json")

app = web.Application()
app.router.add_route("*", "/{tail:.*}", answer)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RawResponses(asyncio.Protocol):
    """HTTP/1.1 responses framed by ``Content-Length``, one at a time: the floor."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[bytes] | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.index(b"content-length:") + len(b"content-length:")
        length = int(head[at:head.find(b"\r\n", at) if b"\r\n" in head[at:] else None])
        if len(self.buffer) >= end + 4 + length and self.waiter is not None:
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            self.waiter.set_result(body)


class RawLines(asyncio.Protocol):
    """A chunked watch stream read as the floor reads it: split lines, parse each."""

    def __init__(self, done: asyncio.Future[int]) -> None:
        self.buffer = b""
        self.events = 0
        self.done = done
        self.head_seen = False

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.head_seen:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.buffer, self.head_seen = self.buffer[end + 4:], True
        # Chunk-size lines are hex digits alone; an event line is a JSON object.
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"{"):
                json.loads(line)
                self.events += 1
            elif line.strip() == b"0" and not self.done.done():
                self.done.set_result(self.events)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.events)


def cpu() -> tuple[float, float]:
    times = os.times()
    return times.user, times.system


async def timed(count: int, call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(user µs, system µs) per call."""
    user, system = cpu()
    for _ in range(count):
        await call()
    after_user, after_system = cpu()
    return (after_user - user) * 1e6 / count, (after_system - system) * 1e6 / count


async def one_round(port: int, count: int) -> dict[str, tuple[float, float]]:
    client = kube.Kube()
    flowrun = "nightly-1772406000"

    async def get() -> object:
        return await client.get(kube.FLOWRUNS, flowrun, namespace="default")

    async def patch() -> object:
        return await client.patch_status(kube.FLOWRUNS, flowrun,
                                         {"status": {"phase": "Running"}}, namespace="default")

    loop = asyncio.get_running_loop()
    transport, raw = await loop.create_connection(RawResponses, "127.0.0.1", port)
    request = (b"GET /apis/headwater.dev/v1/namespaces/default/flowruns/" + flowrun.encode()
               + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n")

    async def raw_get() -> object:
        raw.waiter = loop.create_future()
        transport.write(request)
        return json.loads(await raw.waiter)

    async def kube_watch() -> int:
        seen = 0
        stream = client.watch(kube.FLOWRUNS, namespace="default", resource_version="1",
                              allow_bookmarks=False)
        async for _ in stream:
            seen += 1
        return seen

    async def raw_watch() -> int:
        done: asyncio.Future[int] = loop.create_future()
        stream, _ = await loop.create_connection(lambda: RawLines(done), "127.0.0.1", port)
        stream.write(b"GET /apis/headwater.dev/v1/namespaces/default/flowruns?watch=1&events="
                     + str(count).encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        seen = await done
        stream.close()
        return seen

    for call in (get, patch, raw_get):  # warm-up: connections, imports, caches
        for _ in range(100):
            await call()
    figures = {"kube get": await timed(count, get),
               "kube patch_status": await timed(count, patch),
               "raw get": await timed(count, raw_get)}
    transport.close()
    # The watch: the server sends ``count`` events (its query says how many; Kube.watch
    # sends its own query, so the count rides on a header the session adds).
    transport_of = kube.transport(client.client)
    transport_of.session.headers["X-Events"] = str(count)
    for name, call_watch in (("kube watch event", kube_watch), ("raw watch event", raw_watch)):
        user, system = cpu()
        seen = await call_watch()
        after_user, after_system = cpu()
        if seen != count:
            raise SystemExit(f"{name}: {seen} events read, {count} sent")
        figures[name] = ((after_user - user) * 1e6 / count, (after_system - system) * 1e6 / count)
    await kube.aclose_transports()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="calls per figure")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests-per-run", type=float, default=9.1,
                        help="API requests one run costs the operator (soak.py prints it)")
    parser.add_argument("--events-per-run", type=float, default=10.0,
                        help="watch events one run brings the operator (its own and its pod's)")
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stdin=subprocess.PIPE)
    assert server.stdin is not None
    server.stdin.write(json.dumps(FLOWRUN).encode())
    server.stdin.close()
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "kubeconfig"
        config.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "floor",
            "clusters": [{"name": "floor", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "floor", "user": {}}],
            "contexts": [{"name": "floor", "context": {"cluster": "floor", "user": "floor"}}]}))
        kube.configure(config)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            best: dict[str, tuple[float, float]] = {}
            for round_number in range(1, args.rounds + 1):
                figures = asyncio.run(one_round(port, args.requests))
                print(f"round {round_number}: " + "; ".join(
                    f"{name} {u + s:.0f} µs (user {u:.0f}, sys {s:.0f})"
                    for name, (u, s) in figures.items()))
                for name, value in figures.items():
                    if name not in best or sum(value) < sum(best[name]):
                        best[name] = value
        finally:
            kube.close()
            server.terminate()
            server.wait()
    print("\n| per request or event, client CPU (best round) | µs | user | system |")
    print("|---|---|---|---|")
    for name, (user, system) in best.items():
        print(f"| {name} | {user + system:.0f} | {user:.0f} | {system:.0f} |")
    per_run_floor = (args.requests_per_run * sum(best["raw get"])
                     + args.events_per_run * sum(best["raw watch event"])) / 1000
    per_run_kube = (args.requests_per_run * (sum(best["kube get"])
                                             + sum(best["kube patch_status"])) / 2
                    + args.events_per_run * sum(best["kube watch event"])) / 1000
    print(f"\nOne run = {args.requests_per_run} requests + {args.events_per_run} watch events:")
    print(f"  floor (no HTTP library, nothing decided): {per_run_floor:.2f} ms of CPU")
    print(f"  through headwater_operator.kube, nothing decided: {per_run_kube:.2f} ms of CPU")


if __name__ == "__main__":
    main()
