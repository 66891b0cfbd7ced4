"""A sans-I/O decoder for ``text/event-stream`` bodies (Server-Sent Events).

:class:`SSEDecoder` turns the bytes of an event stream, cut into chunks at arbitrary points,
into :class:`ServerSentEvent` objects. It follows the "event stream interpretation" section of
the WHATWG HTML standard and does no I/O of its own: the caller feeds whatever it read from
the network and gets back the events that became complete.

How it works
------------
Every streamed answer of the SDK goes through this module, so it is written for throughput.

* **Line ends are normalised per chunk.** A chunk containing CR has its CRLF and lone CR
  rewritten to LF with two ``bytes.replace`` calls; a CR that ends a chunk is remembered so
  that an LF opening the next chunk is dropped (CRLF split across chunks is one line end).
  From then on LF is the only line terminator the decoder has to look for.
* **Only the unfinished last line is buffered.** It lives in a ``bytearray`` and holds no
  LF, so each call of :meth:`SSEDecoder.feed` searches only the new chunk (one ``rfind``)
  and appends to the buffer when the chunk ends no line. The buffer is joined to the
  complete lines once, when its line ends, so an event delivered one byte at a time still
  costs linear time. ``_scanned_bytes`` counts the bytes searched and interpreted, for the
  tests to check that.
* **Complete lines are handled a block at a time.** They are split at blank lines
  (``b"\\n\\n"``). A block that is a single ``data: ...`` line, with no half-read block
  before it, is the shape of nearly every Dify event: it becomes an event directly. Any other
  block (several lines, comments, ``event:``/``id:``/``retry:`` fields, a block continued
  from an earlier chunk) goes through the general line interpreter. Both paths give the same
  events whatever the chunking, which the property tests check.
* **The stream's entry point is** :meth:`SSEDecoder.feed_data`. It returns the data of
  single-line ``data:`` blocks as undecoded bytes (the JSON parser reads bytes), splits
  lines made only of such blocks with one ``bytes.split``, and lets a chunk that ends no
  line (a stream read in tiny pieces) through with a few checks.
* **Text is decoded per field value**, as UTF-8 with invalid bytes replaced by U+FFFD. CR
  and LF never occur inside a multi-byte sequence, so decoding complete lines one by one
  gives the same text as decoding the whole stream, a character split across chunks waits in
  the partial line until its line is complete, and invalid bytes at the end of one line
  cannot combine with the start of the next.

Only the leading UTF-8 byte order mark of the stream is removed; the bytes of the BOM may
arrive in separate chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import attrs

from chatapi.errors import ConfigurationError, SSEDecodeError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecodeError", "SSEDecoder", "ServerSentEvent"]

_BOM = b"\xef\xbb\xbf"
#: The default ``max_event_size`` of :class:`SSEDecoder`: far above any real Dify event, low
#: enough that a runaway stream cannot exhaust memory.
DEFAULT_MAX_EVENT_SIZE = 64 * 1024 * 1024
# Bytes of the offending event quoted in an SSEDecodeError message.
_ERROR_HEAD = 100


@attrs.frozen(slots=True)
class ServerSentEvent:
    """One dispatched event.

    ``event`` is the event type (``"message"`` when the block set none), ``data`` the data
    lines joined by LF. ``id`` is the stream's last event ID when the event was dispatched:
    it is carried over from earlier blocks, ``None`` while the stream has never set one and
    ``""`` after an empty ``id`` field. ``retry`` is the last valid reconnection time (in
    milliseconds) the stream announced, or ``None``.
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


# attrs' __init__ for a frozen class assigns every field through object.__setattr__, which
# costs about as much as all the other work of the decoder's fast path. That path therefore
# builds events with the slot descriptors directly; it sets all four fields, so the events
# equal (and behave exactly like) constructor-built ones.
_set_event = ServerSentEvent.__dict__["event"].__set__
_set_data = ServerSentEvent.__dict__["data"].__set__
_set_id = ServerSentEvent.__dict__["id"].__set__
_set_retry = ServerSentEvent.__dict__["retry"].__set__


class SSEDecoder:
    """Incremental decoder of an event stream.

    Call :meth:`feed` with each chunk of the body as it arrives and :meth:`close` when the
    body ends. Both return the events completed by that call, in stream order.

    ``max_event_size`` bounds the memory one event may take while it is being received: the
    bytes of the data lines of the current block (field name included, line ends excluded)
    plus the bytes of the line being read. Going over it raises :class:`SSEDecodeError`,
    after which the decoder's state is undefined and the decoder must be discarded. Whether
    a stream goes over does not depend on how it was chunked.

    By the WHATWG rules a block without data lines dispatches nothing. With
    ``dispatch_empty=True`` such a block is dispatched anyway, with ``data=""``, when it held
    at least one field line: Dify's ``event: ping`` keep-alives then become
    ``ServerSentEvent(event="ping", data="")``. Blocks made only of comments never dispatch.
    """

    __slots__ = (
        "_at_start",
        "_bom_head",
        "_buf",
        "_data",
        "_dispatch_empty",
        "_event_type",
        "_last_event_id",
        "_max_event_size",
        "_pending",
        "_plain",
        "_retry",
        "_room",
        "_scanned_bytes",
        "_skip_lf",
    )

    def __init__(
        self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE, dispatch_empty: bool = False
    ) -> None:
        if max_event_size < 1:
            raise ConfigurationError(f"max_event_size must be positive, got {max_event_size}")
        self._max_event_size = max_event_size
        self._dispatch_empty = dispatch_empty
        self._last_event_id: str | None = None
        self._retry: int | None = None
        self._scanned_bytes = 0
        self._buf = bytearray()
        self._bom_head = b""
        self._at_start = True
        self._skip_lf = False
        # Neither BOM bytes nor a trailing CR await the next chunk (see feed_data).
        self._plain = False
        self._data: list[bytes] = []
        # How much more the event being read may take: max_event_size less its data lines.
        self._room = max_event_size
        self._event_type = b""
        self._pending = False

    @property
    def last_event_id(self) -> str | None:
        """The last event ID set by the stream (``None`` if it never sent an ``id`` field)."""
        return self._last_event_id

    @property
    def retry(self) -> int | None:
        """The last valid ``retry`` value in milliseconds, or ``None`` if none was sent."""
        return self._retry

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode the next chunk of the stream; return the events it completed.

        Raises :class:`SSEDecodeError` when the event being received grows past
        ``max_event_size``.
        """
        return cast("list[ServerSentEvent]", self._feed(chunk, False))

    def feed_data(self, chunk: bytes) -> Sequence[bytes | ServerSentEvent]:
        """Like :meth:`feed`, but an event whose block was a lone ``data:`` line comes back as
        the undecoded bytes of its data (a ``bytes`` object) instead of a
        :class:`ServerSentEvent`.

        For consumers that only need the data of such events (their type is ``"message"``;
        ``id`` and ``retry`` stay readable on the decoder): it spares building an event object
        and decoding text that a JSON parser reads from bytes anyway. The bytes may hold
        invalid UTF-8, which :meth:`feed` would have replaced with U+FFFD.
        """
        if self._plain and 10 not in chunk and 13 not in chunk:
            # A stream read in small pieces: most chunks only extend the partial line.
            # Not counted in ``_scanned_bytes`` here: these bytes are counted once their line
            # ends and ``_feed`` interprets them, and the two checks above read each byte of
            # a chunk once, which is linear by construction.
            buf = self._buf
            buf += chunk
            if len(buf) > self._room:
                raise self._too_large(bytes(buf[:_ERROR_HEAD]))
            return ()
        return self._feed(chunk, True)

    def _feed(self, chunk: bytes, raw: bool) -> Sequence[bytes | ServerSentEvent]:
        if self._at_start:
            chunk = self._bom_head + chunk
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                # Cannot tell yet whether these bytes begin a BOM.
                self._bom_head = chunk
                return []
            self._bom_head = b""
            self._at_start = False
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        if self._skip_lf and chunk:
            # The previous chunk ended with CR, which already ended the line.
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
        # Integer needles make ``in`` a plain memchr; 13 is CR.
        if 13 in chunk:
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        self._plain = not self._skip_lf

        # The buffered partial line holds no LF, so only the new bytes need searching.
        end = chunk.rfind(b"\n")
        self._scanned_bytes += len(chunk)
        buf = self._buf
        if end < 0:
            buf += chunk
            self._check_partial_line()
            return []
        if buf:
            lines = b"".join((buf, chunk[: end + 1]))
            buf.clear()
        else:
            lines = chunk[: end + 1]
        buf += chunk[end + 1 :]
        self._scanned_bytes += len(lines)
        events = self._interpret(lines, raw)
        self._check_partial_line()
        return events

    def close(self) -> list[ServerSentEvent]:
        """Signal the end of the stream; return the events it completed (always none).

        As the standard requires, a last block that no blank line ended is discarded, along
        with any partial line, undecided BOM bytes or pending CR. The decoder is then ready
        for a new stream (a reconnection); :attr:`last_event_id` and :attr:`retry` are kept,
        as an ``EventSource`` keeps them across reconnections.
        """
        self._buf = bytearray()
        self._bom_head = b""
        self._at_start = True
        self._skip_lf = False
        self._plain = False
        self._reset_block()
        return []

    def _interpret(self, lines: bytes, raw: bool) -> Sequence[bytes | ServerSentEvent]:
        """Interpret complete lines, each ended by LF (``raw``: see :meth:`feed_data`)."""
        if raw and not self._pending and lines.startswith(b"data: ") and lines.endswith(b"\n\n"):
            # Lines made only of blocks that are a single ``data:`` line are split into their
            # data in one call. The split is right exactly when each LF belongs to a block end:
            # the k - 1 separators b"\n\ndata: " and the final b"\n\n" of k pieces hold 2 k
            # LFs, so then there is no other LF, inside a block or as an extra blank line.
            payloads = lines[6:-2].split(b"\n\ndata: ")
            if lines.count(b"\n") == 2 * len(payloads):
                if len(lines) > self._max_event_size:
                    self._check_blocks(payloads)
                return payloads
        events: list[bytes | ServerSentEvent] = []
        append = events.append
        # Every b"\n\n" ends a line and then a blank line: each item but the last is the
        # rest of a block that gets dispatched. The last item is empty if ``lines`` ended
        # with a blank line, else it holds LF-ended lines of a block still open.
        blocks = lines.split(b"\n\n")
        tail = blocks.pop()
        pending = self._pending
        last_event_id = self._last_event_id
        retry = self._retry
        max_size = self._max_event_size
        new_event = object.__new__
        set_event = _set_event
        set_data = _set_data
        set_id = _set_id
        set_retry = _set_retry
        for block in blocks:
            # 10 is LF: a block without one is a single line.
            if not pending and 10 not in block and block.startswith(b"data: "):
                if len(block) > max_size:
                    raise self._too_large(block)
                if raw:
                    append(block[6:])
                    continue
                event = new_event(ServerSentEvent)
                set_event(event, "message")
                set_data(event, block[6:].decode("utf-8", "replace"))
                set_id(event, last_event_id)
                set_retry(event, retry)
                append(event)
            else:
                self._interpret_lines(block, events)
                self._dispatch(events)
                pending = False
                last_event_id = self._last_event_id
                retry = self._retry
        if tail:
            self._interpret_lines(tail[:-1], events)
        return events

    def _check_blocks(self, payloads: list[bytes]) -> None:
        """Apply ``max_event_size`` to blocks split by the whole-chunk path (data only)."""
        for payload in payloads:
            # Measured like the per-block path: the line with its b"data: " field name.
            if len(payload) + 6 > self._max_event_size:
                raise self._too_large(b"data: " + payload[:_ERROR_HEAD])

    def _interpret_lines(self, block: bytes, events: list[bytes | ServerSentEvent]) -> None:
        """Apply each line of ``block`` to the decoder state (the general, per-line path)."""
        for line in block.split(b"\n"):
            if not line:
                self._dispatch(events)
                continue
            # Comments are checked too: while being read they count like any other line, and
            # the verdict must not depend on where the chunks were cut.
            if len(line) > self._room:
                raise self._too_large(line)
            if line[0] == 0x3A:  # ":" starts a comment
                continue
            self._pending = True
            name, colon, value = line.partition(b":")
            if colon and value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value)
                self._room -= len(line)
            elif name == b"event":
                self._event_type = value
            elif name == b"id":
                if b"\0" not in value:
                    self._last_event_id = value.decode("utf-8", "replace")
            # bytes.isdigit() accepts ASCII digits only and rejects b"".
            elif name == b"retry" and value.isdigit():
                try:
                    self._retry = int(value)
                except ValueError:
                    # More digits than int() converts (sys.get_int_max_str_digits, 4,300 by
                    # default): no server means that, and a bare ValueError is no answer.
                    raise SSEDecodeError(
                        f"retry field of {len(value)} digits is not a reconnection time",
                        data=line[:_ERROR_HEAD],
                    ) from None

    def _dispatch(self, events: list[bytes | ServerSentEvent]) -> None:
        """Handle a blank line: emit the current block's event, if any, and reset the block."""
        if self._data:
            data = b"\n".join(self._data).decode("utf-8", "replace")
        elif self._pending and self._dispatch_empty:
            data = ""
        else:
            self._reset_block()
            return
        event_type = self._event_type.decode("utf-8", "replace") if self._event_type else "message"
        events.append(ServerSentEvent(event_type, data, self._last_event_id, self._retry))
        self._reset_block()

    def _reset_block(self) -> None:
        self._data = []
        self._room = self._max_event_size
        self._event_type = b""
        self._pending = False

    def _check_partial_line(self) -> None:
        if len(self._buf) > self._room:
            raise self._too_large(bytes(self._buf[:_ERROR_HEAD]))

    def _too_large(self, head: bytes) -> SSEDecodeError:
        return SSEDecodeError(
            f"server-sent event larger than max_event_size ({self._max_event_size} bytes)",
            data=head[:_ERROR_HEAD],
        )
