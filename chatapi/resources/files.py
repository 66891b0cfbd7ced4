"""``client.files``: upload a file for a chat message, and download a stored one.

Uploads stream: a path or a file object is read in chunks while the request is written,
never whole into memory. The multipart body is built from our own payload class rather than
aiohttp's file payloads so that (1) a file object passed by the caller is read from where it
stands and is never closed behind the caller's back, (2) a request re-sent after a failed
connection attempt sends the whole file again, and (3) this holds on every aiohttp version
we support.
"""

from __future__ import annotations

import asyncio
import codecs
import io
import mimetypes
import os
import re
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote, unquote

import aiohttp
from aiohttp import hdrs
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload, StringPayload

from .._config import Timeout
from .._convert import structure
from .._raw import AsyncRawResponses, raw
from ..models import FileContent, UploadedFile
from ._base import AsyncResource, path_segment, query_params

__all__ = [
    "AsyncFiles",
    "FileInput",
    "ReadableFile",
    "Upload",
    "file_disposition",
    "filename_from_disposition",
]

CHUNK_SIZE = 64 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class ReadableFile(Protocol):
    """What ``files.upload`` needs of a file object: ``read(size)`` returning bytes."""

    def read(self, size: int = -1, /) -> bytes: ...


FileInput = str | os.PathLike[str] | bytes | bytearray | ReadableFile


class _FilePayload(Payload):
    """A binary file object sent in ``CHUNK_SIZE`` pieces.

    Reads of real files run in a worker thread so that a slow disk does not stall the event
    loop. The file is not closed here: whoever opened it closes it.
    """

    def __init__(self, file: Any, *, content_type: str, in_memory: bool) -> None:
        super().__init__(file, content_type=content_type)
        self._file = file
        self._in_memory = in_memory
        self._start = _position(file)
        self._size = _remaining_size(file, self._start)
        self._started = False

    async def write(self, writer: AbstractStreamWriter) -> None:
        if self._started:
            # A second attempt: start over, or refuse rather than send half a file.
            if self._start is None:
                raise RuntimeError("cannot send a non-seekable file twice")
            self._file.seek(self._start)
        self._started = True
        loop = asyncio.get_running_loop()
        read = self._file.read
        # Never more than the announced size: a file that grows meanwhile (a log being
        # written) must not overrun the request's Content-Length.
        remaining = self._size
        while remaining is None or remaining > 0:
            size = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            chunk = read(size) if self._in_memory else await loop.run_in_executor(
                None, read, size
            )
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            await writer.write(chunk)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a file being uploaded has no text form")


def _position(file: Any) -> int | None:
    """Where a seekable file stands now (the upload starts there); None if not seekable."""
    seekable = getattr(file, "seekable", None)
    try:
        if callable(seekable) and seekable():
            return int(file.tell())
    except (OSError, ValueError):
        pass
    return None


def _remaining_size(file: Any, start: int | None) -> int | None:
    """Bytes from ``start`` to the end, so the request can carry a Content-Length."""
    if start is None:
        return None
    try:
        end = int(file.seek(0, io.SEEK_END))
        file.seek(start)
    except (OSError, ValueError):
        return None
    return max(end - start, 0)


def _content_type_for(filename: str, overrides: Mapping[str, str] | None = None) -> str:
    extension = os.path.splitext(filename)[1].lower().lstrip(".")
    if overrides and extension in overrides:
        return overrides[extension]
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


class Upload:
    """One file to send as the ``file`` part of a multipart request.

    Build it with :meth:`prepare` and close it when the request is over: it closes the
    file it opened itself (from a path) and leaves a caller's file object open.
    """

    def __init__(self, file: Any, *, filename: str, content_type: str, owned: bool) -> None:
        self.file = file
        self.filename = filename
        self.content_type = content_type
        self._owned = owned

    @classmethod
    def prepare(
        cls,
        file: FileInput,
        *,
        filename: str | None,
        content_type: str | None,
        type_overrides: Mapping[str, str] | None = None,
    ) -> Upload:
        """Check the arguments and open a path; the MIME type is guessed from the name."""
        if filename is not None and (not isinstance(filename, str) or not filename.strip()):
            raise ValueError(f"filename must be a non-empty string, got {filename!r}")
        if content_type is not None and (
            not isinstance(content_type, str) or not content_type.strip()
        ):
            raise ValueError(f"content_type must be a non-empty string, got {content_type!r}")
        owned = False
        if isinstance(file, (str, os.PathLike)):
            path = os.fspath(file)
            if not isinstance(path, str):
                raise TypeError("a file path must be text, not bytes")
            name = filename or os.path.basename(path)
            handle: Any = open(path, "rb")  # noqa: SIM115 - closed by Upload.close()
            owned = True
        elif isinstance(file, (bytes, bytearray)):
            if filename is None:
                raise ValueError("filename is required when the file is given as bytes")
            name = filename
            handle = io.BytesIO(file)
        elif callable(getattr(file, "read", None)):
            mode = getattr(file, "mode", None)
            if isinstance(file, io.TextIOBase) or (isinstance(mode, str) and "b" not in mode):
                raise TypeError("the file object must be opened in binary mode ('rb')")
            name = filename or _name_of(file)
            handle = file
        else:
            raise TypeError(
                "file must be a path, bytes or a binary file object, "
                f"got {type(file).__name__}"
            )
        return cls(
            handle,
            filename=name,
            content_type=content_type or _content_type_for(name, type_overrides),
            owned=owned,
        )

    def form(self, *, user: str | None) -> aiohttp.MultipartWriter:
        """The multipart/form-data body: the ``file`` part, then ``user`` if given."""
        form = aiohttp.MultipartWriter("form-data")
        part = _FilePayload(
            self.file,
            content_type=self.content_type,
            in_memory=isinstance(self.file, io.BytesIO),
        )
        part.headers[hdrs.CONTENT_DISPOSITION] = file_disposition(self.filename)
        form.append_payload(part)
        if user is not None:
            field = StringPayload(user)
            field.set_content_disposition("form-data", name="user")
            form.append_payload(field)
        return form

    def close(self) -> None:
        if self._owned:
            self.file.close()


def _name_of(file: Any) -> str:
    name = getattr(file, "name", None)
    if isinstance(name, (str, os.PathLike)):
        base = os.path.basename(os.fspath(name))
        if isinstance(base, str) and base:
            return base
    raise ValueError("filename is required: the file object has no usable name")


def file_disposition(filename: str) -> str:
    """The ``Content-Disposition`` of the file part, readable by Dify's form parser.

    The name goes in a quoted string with the HTML form escapes (``%22`` for a quote),
    which werkzeug undoes; a non-ASCII name goes in ``filename*`` (RFC 5987), which
    werkzeug prefers, with an ASCII stand-in in ``filename``. (aiohttp's own encoding
    percent-escapes the quoted name, and werkzeug would keep the escapes in the name.)
    """
    fallback = (
        filename.replace("\\", "\\\\")
        .replace('"', "%22")
        .replace("\r", "%0D")
        .replace("\n", "%0A")
    )
    if filename.isascii():
        return f'form-data; name="file"; filename="{fallback}"'
    fallback = "".join(char if char.isascii() else "_" for char in fallback)
    encoded = quote(filename, safe="", encoding="utf-8")
    return f'form-data; name="file"; filename="{fallback}"; filename*=utf-8\'\'{encoded}'


# RFC 6266 parameters: name=token or name="quoted string", separated by semicolons.
_DISPOSITION_PARAM = re.compile(
    r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', re.DOTALL
)


def filename_from_disposition(header: str | None) -> str | None:
    """The file name a ``Content-Disposition`` header gives, preferring ``filename*``.

    Directory parts are dropped, so the result is safe to use as a plain file name.
    """
    if not header:
        return None
    params: dict[str, str] = {}
    for key, raw_value in _DISPOSITION_PARAM.findall(header):
        value = raw_value.strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params.setdefault(key.lower(), value)
    name: str | None = None
    extended = params.get("filename*")
    if extended is not None:
        charset, _, rest = extended.partition("'")
        _, _, encoded = rest.partition("'")
        try:
            name = unquote(encoded, encoding=codecs.lookup(charset or "utf-8").name)
        except LookupError:
            name = None
    if not name:
        name = params.get("filename")
    if not name:
        return None
    name = re.split(r"[/\\]", name)[-1]
    return name or None


class AsyncFiles(AsyncResource):
    """Upload files to attach to messages; preview or download stored files."""

    @property
    def with_raw_response(self) -> AsyncFilesRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return AsyncFilesRaw(self)

    async def upload(
        self,
        file: FileInput,
        *,
        user: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> UploadedFile:
        """Upload one file (``POST /files/upload``); attach it with ``InputFile.local(id)``.

        ``file`` is a path, ``bytes`` (then ``filename`` is required) or a binary file object
        (read from its current position, left open). The MIME type is guessed from the file
        name unless ``content_type`` is given. The file must be used later by the same
        ``user``.
        """
        user_id = self._optional_user(user)
        upload = Upload.prepare(file, filename=filename, content_type=content_type)
        try:
            data = await self._http.request_json(
                "POST",
                "/files/upload",
                data=upload.form(user=user_id),
                timeout=self._timeout(timeout),
                max_retries=max_retries,
            )
        finally:
            upload.close()
        return structure(data, UploadedFile, what="the uploaded file")

    async def preview(
        self,
        file_id: str,
        *,
        user: str | None = None,
        as_attachment: bool = False,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> FileContent:
        """Download a stored file: its bytes, content type and (when sent) file name.

        ``as_attachment`` asks for a download (``Content-Disposition: attachment``).
        """
        path = f"/files/{path_segment(file_id, 'file_id')}/preview"
        if not isinstance(as_attachment, bool):
            raise TypeError(
                f"as_attachment must be a boolean, got {type(as_attachment).__name__}"
            )
        params = query_params({"as_attachment": as_attachment, "user": self._optional_user(user)})
        response = await self._http.request(
            "GET", path, params=params, timeout=self._timeout(timeout), max_retries=max_retries
        )
        return FileContent(
            content=response.body,
            content_type=response.headers.get("Content-Type"),
            filename=filename_from_disposition(response.headers.get("Content-Disposition")),
        )


class AsyncFilesRaw(AsyncRawResponses):
    """``with_raw_response`` of :class:`AsyncFiles`: its methods, each returning a
    :class:`~chatapi.RawResponse`."""

    preview = raw(AsyncFiles.preview)
    upload = raw(AsyncFiles.upload)
