"""Streaming throughput of the sync bridge next to the async client, on the same stream.

A local aiohttp server (in a child process, so that it does not compete for this process's
GIL) streams N Dify-like ``message`` events of about 300 bytes, then ``message_end``. The
stream is consumed once with ``AsyncChatClient`` and once with ``ChatClient``, best of a few
rounds each; the script prints events/s for both and the ratio sync / async.

    python -m benchmarks.bench_sync            # 100 000 events, best of 3
    python -m benchmarks.bench_sync --quick    # 10 000 events, one round
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

from aiohttp import web

from chatapi import AsyncChatClient, ChatClient

API_KEY = "app-benchmark"
CHUNK = 64 * 1024  # bytes per server write
IDS = {
    "conversation_id": "48f87fbb-f5aa-416f-89a9-b1bcb9dbdb30",
    "message_id": "cc9ff027-7eae-4990-b4eb-b047a4ed881c",
    "task_id": "8c4184df-4b00-4fdc-81b5-305d32766b05",
}


def stream_body(count: int) -> bytes:
    """``count`` answer deltas and a ``message_end``, encoded the way Dify sends them."""
    events = []
    for index in range(count):
        payload = {
            "event": "message",
            **IDS,
            "id": IDS["message_id"],
            "created_at": 1795660613,
            "answer": f"token {index:08d} ",
            "from_variable_selector": None,
        }
        events.append(b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n")
    end = {
        "event": "message_end",
        **IDS,
        "id": IDS["message_id"],
        "created_at": 1795660613,
        "metadata": {"usage": {"total_tokens": count}},
        "files": [],
    }
    events.append(b"data: " + json.dumps(end, separators=(",", ":")).encode() + b"\n\n")
    return b"".join(events)


def serve(count: int, chunk: int) -> None:
    """Child process: serve the stream on 127.0.0.1, print the port, run until stdin closes."""
    body = stream_body(count)

    async def chat_messages(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for start in range(0, len(body), chunk):
            await response.write(body[start : start + chunk])
        await response.write_eof()
        return response

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat-messages", chat_messages)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


async def consume_async(base_url: str) -> tuple[int, float]:
    async with AsyncChatClient(API_KEY, base_url=base_url, user="bench") as client:
        stream = client.chat.stream("benchmark")
        started = time.perf_counter()
        count = 0
        async with stream:
            async for _ in stream:
                count += 1
        return count, time.perf_counter() - started


def consume_sync(base_url: str) -> tuple[int, float]:
    with ChatClient(API_KEY, base_url=base_url, user="bench") as client:
        stream = client.chat.stream("benchmark")  # starts the loop thread, sends nothing yet
        started = time.perf_counter()
        count = 0
        with stream:
            for _ in stream:
                count += 1
        return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 000 events, one round")
    parser.add_argument("--events", type=int, default=None, help="events per stream")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per client")
    parser.add_argument(
        "--chunk", type=int, default=CHUNK, help="bytes per server write (default 64 KiB)"
    )
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.chunk)
        return
    events = args.events or (10_000 if args.quick else 100_000)
    rounds = args.rounds or (1 if args.quick else 3)

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_sync",
            "--serve",
            str(events),
            "--chunk",
            str(args.chunk),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base_url = f"http://127.0.0.1:{server.stdout.readline().strip()}/v1"
        best_async = best_sync = float("inf")
        for _ in range(rounds):
            count, elapsed = asyncio.run(consume_async(base_url))
            assert count == events + 1, count
            best_async = min(best_async, elapsed)
            count, elapsed = consume_sync(base_url)
            assert count == events + 1, count
            best_sync = min(best_sync, elapsed)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)

    async_rate = (events + 1) / best_async
    sync_rate = (events + 1) / best_sync
    print(f"{events + 1} events of ~300 B per stream, {args.chunk} B writes, best of {rounds}")
    print(f"async  AsyncChatClient: {async_rate:12,.0f} events/s")
    print(f"sync   ChatClient:      {sync_rate:12,.0f} events/s")
    print(f"ratio  sync / async:    {sync_rate / async_rate:12.2f}")


if __name__ == "__main__":
    main()
