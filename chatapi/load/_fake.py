"""A fake Dify server in its own process, as the target of ``chatapi load --fake`` and tests.

The server runs ``chatapi fake-server`` with load settings: the client under test does not
share its process (or its core) with the server it measures. On exit the server prints
what it counted; :meth:`FakeServerProcess.stop` returns it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import TracebackType

import orjson

from ..errors import ConfigurationError
from ..testing import LoadSettings, StreamCounts

__all__ = ["FakeServerProcess"]

_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0


def fake_server_arguments(settings: LoadSettings, chunk_delay: float) -> list[str]:
    """The ``chatapi fake-server`` options for ``settings``."""
    arguments = [
        "--chunk-delay",
        repr(chunk_delay),
        "--first-token-delay",
        repr(settings.first_token_delay),
        "--error-rate",
        repr(settings.error_rate),
        "--rate-limit-rate",
        repr(settings.rate_limit_rate),
    ]
    if settings.events_per_answer is not None:
        arguments += ["--events-per-answer", str(settings.events_per_answer)]
    if settings.stamp_send_times:
        arguments.append("--stamp-send-times")
    if settings.seed is not None:
        arguments += ["--seed", str(settings.seed)]
    return arguments


class FakeServerProcess:
    """``chatapi fake-server`` in a child process on 127.0.0.1 (a free port).

    Use it as a context manager; ``base_url`` and ``api_key`` are for the client, and
    :meth:`stop` ends the server and returns its :class:`~chatapi.testing.StreamCounts`.
    """

    api_key = "app-fake"

    def __init__(self, settings: LoadSettings, *, chunk_delay: float = 0.0) -> None:
        command = [sys.executable, "-m", "chatapi", "fake-server", "--port", "0"]
        command += fake_server_arguments(settings, chunk_delay)
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            # Out of the terminal's process group: Ctrl-C stops the load test, whose open
            # streams still need the server while they drain.
            start_new_session=True,
        )
        self.counts: StreamCounts | None = None
        assert self._process.stdout is not None
        line = self._process.stdout.readline().decode().strip()
        if not line.startswith("http"):
            self._process.kill()
            self._process.wait(_STOP_TIMEOUT)
            raise ConfigurationError(f"the fake server did not start (it said {line!r})")
        self.base_url = line

    def stop(self) -> StreamCounts | None:
        """Stop the server (idempotent); its counts, if it could report them."""
        process = self._process
        if process.poll() is None:
            if os.name == "posix":
                process.send_signal(signal.SIGINT)
            else:  # pragma: no cover - no SIGINT to a child on Windows
                process.terminate()
            try:
                output, _ = process.communicate(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
            self.counts = _parse_counts(output)
        return self.counts

    def __enter__(self) -> FakeServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _parse_counts(output: bytes) -> StreamCounts | None:
    for line in reversed(output.splitlines()):
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(data, dict) and isinstance(data.get("stream_counts"), dict):
            return StreamCounts(**data["stream_counts"])
    return None
