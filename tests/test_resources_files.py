"""client.files and client.audio: streamed multipart uploads, file downloads, speech."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import chatapi._http
import chatapi.resources.files as files_module
from chatapi import (
    AsyncChatClient,
    NotFoundError,
    PermissionDeniedError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)
from chatapi.models import FileContent, UploadedFile
from chatapi.resources.files import CHUNK_SIZE, filename_from_disposition

from .conftest import API_KEY, ReplayServer, Reply, recording
from .resource_helpers import (
    anonymous_client,
    error_example,
    error_reply,
    example,
    json_reply,
    multipart_parts,
)

UPLOADED = json_reply(example("file_upload"), status=201)
BIG = bytes(range(256)) * 1200  # 300 KiB: several chunks


class RecordingReader:
    """A binary file object (not a BytesIO) that records the size of every read."""

    def __init__(self, data: bytes, *, seekable: bool = True) -> None:
        self._buffer = io.BytesIO(data)
        self._seekable = seekable
        self.reads: list[int] = []
        self.closed = False

    def read(self, size: int = -1, /) -> bytes:
        self.reads.append(size)
        return self._buffer.read(size)

    def seekable(self) -> bool:
        return self._seekable

    def tell(self) -> int:
        return self._buffer.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if not self._seekable:
            raise io.UnsupportedOperation("seek")
        return self._buffer.seek(offset, whence)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def opened_files(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[io.BufferedReader]]:
    """The files ``files.upload`` opens from paths, to check they get closed."""
    opened: list[io.BufferedReader] = []

    def tracking_open(path: str, mode: str) -> io.BufferedReader:
        handle = open(path, mode)  # noqa: SIM115 - the test closes what the code forgets
        opened.append(handle)  # type: ignore[arg-type]
        return handle  # type: ignore[return-value]

    monkeypatch.setattr(files_module, "open", tracking_open, raising=False)
    yield opened
    for handle in opened:
        handle.close()


# -- files.upload ---------------------------------------------------------------------------


async def test_upload_decodes_the_answer_recorded_from_dify_1_12(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    body = recording("dify-1.12.1/v1_30_files_upload_png")
    server.queue(Reply(body=body, status=201, content_type="application/json"))
    uploaded = await client.files.upload(b"\x89PNG", filename="red4x4.png")

    assert isinstance(uploaded, UploadedFile)
    assert uploaded.id == "34da5f03-fff2-4aa9-9f62-4cd71cab370a"
    assert (uploaded.name, uploaded.size, uploaded.extension) == ("red4x4.png", 73, "png")
    assert uploaded.mime_type == "image/png"
    assert uploaded.created_by == "978f89ad-e018-49a0-bcd5-b1505c4d063e"
    assert uploaded.source_url is not None and "sign=" in uploaded.source_url
    assert uploaded.preview_url is None and uploaded.reference is None
    assert uploaded.raw == json.loads(body)


async def test_upload_from_a_path_streams_the_file_and_closes_it(
    tmp_path: Path,
    server: ReplayServer,
    client: AsyncChatClient,
    opened_files: list[io.BufferedReader],
) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(BIG)
    server.queue(UPLOADED)
    await client.files.upload(path)

    parts = multipart_parts(server.requests[0])
    assert parts["file"].content == BIG
    assert parts["file"].disposition == 'form-data; name="file"; filename="report.pdf"'
    assert parts["file"].headers["Content-Type"] == "application/pdf"
    assert parts["user"].content == b"user-1"
    assert server.requests[0].headers["Content-Length"] == str(len(server.requests[0].body))
    (handle,) = opened_files
    assert handle.closed


async def test_upload_reads_a_file_object_in_chunks_from_where_it_stands(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    reader = RecordingReader(b"HEADER" + BIG)
    reader.seek(6)
    server.queue(UPLOADED)
    await client.files.upload(reader, filename="data.bin")

    assert multipart_parts(server.requests[0])["file"].content == BIG
    # Never read whole: every read asks for at most one chunk.
    assert len(reader.reads) == -(-len(BIG) // CHUNK_SIZE)
    assert all(0 < size <= CHUNK_SIZE for size in reader.reads)
    assert not reader.closed  # the caller's file stays open


async def test_upload_sends_no_more_than_the_size_it_announced(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    class GrowingFile(RecordingReader):
        def read(self, size: int = -1, /) -> bytes:
            chunk = super().read(size)
            position = self._buffer.tell()
            self._buffer.seek(0, io.SEEK_END)
            self._buffer.write(b"appended while uploading")
            self._buffer.seek(position)
            return chunk

    server.queue(UPLOADED)
    # Without the limit this upload would never end: guard against a hang.
    await asyncio.wait_for(client.files.upload(GrowingFile(BIG), filename="growing.log"), 10)
    request = server.requests[0]
    assert multipart_parts(request)["file"].content == BIG
    assert request.headers["Content-Length"] == str(len(request.body))


async def test_upload_of_a_non_seekable_stream_is_sent_chunked(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    reader = RecordingReader(BIG, seekable=False)
    server.queue(UPLOADED)
    await client.files.upload(reader, filename="pipe.bin")

    request = server.requests[0]
    assert request.headers.get("Transfer-Encoding") == "chunked"
    assert multipart_parts(request)["file"].content == BIG


async def test_upload_guesses_the_type_from_the_name_of_an_open_file(
    tmp_path: Path, server: ReplayServer, client: AsyncChatClient
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"some notes")
    server.queue(UPLOADED)
    with path.open("rb") as handle:
        await client.files.upload(handle)
        assert not handle.closed
    part = multipart_parts(server.requests[0])["file"]
    assert part.disposition == 'form-data; name="file"; filename="notes.txt"'
    assert part.headers["Content-Type"] == "text/plain"


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("blob.unknownext", None, "application/octet-stream"),
        ("noext", None, "application/octet-stream"),
        ("photo.JPG", None, "image/jpeg"),
        ("photo.jpg", "image/webp", "image/webp"),
    ],
)
async def test_upload_content_type(
    filename: str,
    content_type: str | None,
    expected: str,
    server: ReplayServer,
    client: AsyncChatClient,
) -> None:
    server.queue(UPLOADED)
    await client.files.upload(b"x", filename=filename, content_type=content_type)
    assert multipart_parts(server.requests[0])["file"].headers["Content-Type"] == expected


@pytest.mark.parametrize(
    ("filename", "disposition"),
    [
        (
            "héllo wörld.png",
            "form-data; name=\"file\"; filename=\"h_llo w_rld.png\"; "
            "filename*=utf-8''h%C3%A9llo%20w%C3%B6rld.png",
        ),
        ('say "hi".txt', 'form-data; name="file"; filename="say %22hi%22.txt"'),
    ],
)
async def test_upload_file_names_are_written_so_that_dify_reads_them_back(
    filename: str, disposition: str, server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(UPLOADED)
    await client.files.upload(b"x", filename=filename)
    assert multipart_parts(server.requests[0])["file"].disposition == disposition


async def test_upload_without_a_user_sends_no_user_part(
    server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.queue(UPLOADED)
    async with anonymous_client(server, monkeypatch) as client:
        await client.files.upload(b"x", filename="a.txt")
    assert set(multipart_parts(server.requests[0])) == {"file"}


@pytest.mark.parametrize(
    ("file", "kwargs", "error", "message"),
    [
        (b"data", {}, ValueError, "filename is required"),
        (io.BytesIO(b"data"), {}, ValueError, "filename is required"),
        (io.StringIO("text"), {"filename": "a.txt"}, TypeError, "binary mode"),
        (42, {}, TypeError, "path, bytes or a binary file object"),
        (b"data", {"filename": ""}, ValueError, "filename"),
        (b"data", {"filename": "a.txt", "content_type": ""}, ValueError, "content_type"),
    ],
)
async def test_upload_refuses_bad_arguments_before_sending(
    file: Any,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
    server: ReplayServer,
    client: AsyncChatClient,
) -> None:
    with pytest.raises(error, match=message):
        await client.files.upload(file, **kwargs)
    assert server.requests == []


async def test_upload_of_a_missing_path_raises_file_not_found(
    tmp_path: Path, server: ReplayServer, client: AsyncChatClient
) -> None:
    with pytest.raises(FileNotFoundError):
        await client.files.upload(tmp_path / "missing.png")
    assert server.requests == []


async def test_upload_too_large_raises_and_still_closes_the_file(
    tmp_path: Path,
    server: ReplayServer,
    client: AsyncChatClient,
    opened_files: list[io.BufferedReader],
) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(b"x" * 1000)
    server.queue(error_reply(error_example("file_too_large")))
    with pytest.raises(RequestTooLargeError) as caught:
        await client.files.upload(str(path))
    assert caught.value.code == "file_too_large"
    assert opened_files[0].closed


async def test_upload_of_a_refused_type_is_unsupported_media(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(error_reply(error_example("unsupported_file_type")))
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        await client.files.upload(b"MZ", filename="tool.exe")
    assert caught.value.code == "unsupported_file_type"


class RefusingOnceConnector(aiohttp.TCPConnector):
    """Refuses the first connection attempt, as a server that is not up yet would."""

    refusals = 1

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        if self.refusals:
            self.refusals -= 1
            raise aiohttp.ClientConnectorError(req.connection_key, ConnectionRefusedError(111, "x"))
        return await super().connect(req, traces, timeout)


@pytest.fixture
async def flaky_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=RefusingOnceConnector()) as session:
        yield session


async def test_upload_retried_after_a_refused_connection_sends_the_whole_file(
    server: ReplayServer,
    flaky_session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chatapi._http, "backoff_delay", lambda attempt: 0.0)
    reader = RecordingReader(BIG)
    server.queue(UPLOADED)
    async with AsyncChatClient(
        api_key=API_KEY, base_url=server.base_url, user="u", session=flaky_session
    ) as client:
        await client.files.upload(reader, filename="retry.bin")

    assert isinstance(flaky_session.connector, RefusingOnceConnector)
    assert flaky_session.connector.refusals == 0  # the first attempt was refused
    (request,) = server.requests
    assert multipart_parts(request)["file"].content == BIG


class CollectingWriter:
    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, chunk: bytes) -> None:
        self.data += chunk


async def test_a_file_part_written_twice_sends_the_whole_file_both_times() -> None:
    upload = files_module.Upload.prepare(
        RecordingReader(BIG), filename="twice.bin", content_type=None
    )
    form = upload.form(user=None)
    first, second = CollectingWriter(), CollectingWriter()
    await form.write(first)  # type: ignore[arg-type]
    await form.write(second)  # type: ignore[arg-type]
    assert first.data == second.data
    assert BIG in first.data


async def test_a_non_seekable_file_part_is_never_sent_twice_partially() -> None:
    upload = files_module.Upload.prepare(
        RecordingReader(BIG, seekable=False), filename="once.bin", content_type=None
    )
    form = upload.form(user=None)
    await form.write(CollectingWriter())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="twice"):
        await form.write(CollectingWriter())  # type: ignore[arg-type]


# -- files.preview ----------------------------------------------------------------------------


async def test_preview_returns_bytes_type_and_the_name_from_content_disposition(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(
        Reply(
            body=b"\x89PNG\r\n",
            content_type="image/png",
            headers={
                "Content-Disposition": "attachment; filename=\"rates.png\"; "
                "filename*=UTF-8''%E2%82%AC%20rates.png"
            },
        )
    )
    content = await client.files.preview("f-1", as_attachment=True)

    assert isinstance(content, FileContent)
    assert content.content == b"\x89PNG\r\n" and content.size == 6
    assert content.content_type == "image/png"
    assert content.filename == "€ rates.png"
    assert server.requests[0].query == {"as_attachment": "true", "user": "user-1"}
    assert "content=" not in repr(content)  # the bytes stay out of the repr


async def test_preview_without_content_disposition_has_no_name(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(body=b"hello", content_type="text/plain; charset=utf-8"))
    content = await client.files.preview("f-1")
    assert content.filename is None
    assert content.content_type == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    ("code", "error"),
    [("file_not_found", NotFoundError), ("file_access_denied", PermissionDeniedError)],
)
async def test_preview_errors(
    code: str, error: type[Exception], server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(error_reply(error_example(code)))
    with pytest.raises(error) as caught:
        await client.files.preview("f-1")
    assert caught.value.code == code  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("inline", None),
        ("attachment; filename=plain.txt", "plain.txt"),
        ('attachment; filename="with space.txt"', "with space.txt"),
        ('attachment; filename="quo\\"te.txt"', 'quo"te.txt'),
        ("attachment; filename*=UTF-8''%C3%A9t%C3%A9.pdf", "été.pdf"),
        ("attachment; FILENAME*=utf-8'en'r%C3%A9sum%C3%A9.doc; filename=resume.doc", "résumé.doc"),
        ("attachment; filename*=bogus''x.txt; filename=\"fallback.txt\"", "fallback.txt"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="C:\\\\temp\\\\a.txt"', "a.txt"),
        ('attachment; filename=""', None),
    ],
)
def test_filename_from_content_disposition(header: str | None, expected: str | None) -> None:
    assert filename_from_disposition(header) == expected


# -- audio -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("q.mp3", "audio/mp3"),  # Dify refuses audio/mpeg
        ("q.M4A", "audio/m4a"),
        ("q.wav", "audio/wav"),
        ("q.amr", "audio/amr"),
        ("q.mpga", "audio/mpga"),
    ],
)
async def test_to_text_sends_the_audio_type_dify_accepts(
    filename: str, content_type: str, server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("audio_to_text")))
    text = await client.audio.to_text(b"audio", filename=filename)

    assert text == "Hello, I would like to know more about the iPhone 13 Pro Max."
    part = multipart_parts(server.requests[0])["file"]
    assert part.headers["Content-Type"] == content_type
    assert server.requests[0].path == "/v1/audio-to-text"


async def test_to_text_streams_a_path_and_closes_it(
    tmp_path: Path,
    server: ReplayServer,
    client: AsyncChatClient,
    opened_files: list[io.BufferedReader],
) -> None:
    path = tmp_path / "question.wav"
    path.write_bytes(BIG)
    server.queue(json_reply({"text": "hi"}))
    assert await client.audio.to_text(path, user="u-9") == "hi"

    parts = multipart_parts(server.requests[0])
    assert parts["file"].content == BIG
    assert parts["user"].content == b"u-9"
    assert opened_files[0].closed


async def test_to_text_of_too_long_audio_is_too_large(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(error_reply(error_example("audio_too_large")))
    with pytest.raises(RequestTooLargeError) as caught:
        await client.audio.to_text(b"audio", filename="long.mp3")
    assert caught.value.code == "audio_too_large"


async def test_to_speech_returns_the_audio_bytes(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(body=b"RIFF\x00\x01WAVE", content_type="audio/wav"))
    audio = await client.audio.to_speech(message_id="m-1", text="ignored when message_id wins")
    assert audio == b"RIFF\x00\x01WAVE"
    assert server.requests[0].json() == {
        "message_id": "m-1",
        "text": "ignored when message_id wins",
        "user": "user-1",
    }


async def test_to_speech_needs_text_or_a_message(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    with pytest.raises(ValueError, match="text or message_id"):
        await client.audio.to_speech(voice="alloy")
    assert server.requests == []
