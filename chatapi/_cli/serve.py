"""``chatapi fake-server``: the fake Dify API for other programs, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import attrs
import orjson

from ..cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from ..load._cli import fake_server_settings
from ..testing import FakeChatServer
from .running import run as run_interruptible

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    try:
        server = FakeChatServer(
            api_key=args.api_keys,
            host=args.host,
            port=args.port,
            mode=args.mode,
            chunk_delay=args.chunk_delay,
            ping_interval=args.ping_interval,
            load=(load := fake_server_settings(args)),
        )
    except (TypeError, ValueError) as error:
        sys.stderr.write(f"chatapi: error: {error}\n")
        return EXIT_USAGE
    # A load target would spend its time logging every request.
    logging.basicConfig(
        level=logging.INFO if load is None else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )
    loop = asyncio.new_event_loop()
    try:
        return run_interruptible(loop, _serve(server, any_key=not args.api_keys))
    finally:
        try:
            loop.run_until_complete(server.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            if load is not None:
                counts = attrs.asdict(server.stream_counts())
                sys.stdout.write(orjson.dumps({"stream_counts": counts}).decode() + "\n")
                sys.stdout.flush()


async def _serve(server: FakeChatServer, *, any_key: bool) -> int:
    try:
        await server.start()
    except OSError as error:
        sys.stderr.write(f"chatapi: error: cannot listen: {error}\n")
        return EXIT_FAILED
    sys.stdout.write(server.base_url + "\n")
    sys.stdout.flush()
    keys = "any API key" if any_key else "the given API keys"
    sys.stderr.write(f"chatapi: fake Dify API ({server.mode}, {keys}); Ctrl-C to stop\n")
    sys.stderr.flush()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        sys.stderr.write("chatapi: stopped\n")
    # Only Ctrl-C ends the server: interrupted, as the exit codes say.
    return EXIT_INTERRUPTED
