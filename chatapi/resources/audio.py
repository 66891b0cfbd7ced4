"""``client.audio``: speech to text and text to speech."""

from __future__ import annotations

from typing import Any

from .._config import Timeout
from .._convert import json_object, structure
from .._raw import AsyncRawResponses, raw
from ._base import AsyncResource, check_str
from .files import FileInput, Upload

__all__ = ["AsyncAudio", "AsyncAudioRaw"]

# Dify checks the declared MIME type of the audio part against its own list, which has
# ``audio/mp3`` where the registry says ``audio/mpeg`` (rejected with a 415).
AUDIO_TYPES = {
    "mp3": "audio/mp3",
    "m4a": "audio/m4a",
    "wav": "audio/wav",
    "amr": "audio/amr",
    "mpga": "audio/mpga",
}


class AsyncAudio(AsyncResource):
    """Transcribe speech and synthesize the app's voice."""

    @property
    def with_raw_response(self) -> AsyncAudioRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return AsyncAudioRaw(self)

    async def to_text(
        self,
        file: FileInput,
        *,
        user: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> str:
        """Transcribe an audio file (mp3, m4a, wav, amr, mpga; at most 30 MB).

        ``file`` is taken like in ``files.upload``: a path, ``bytes`` with ``filename``, or
        a binary file object; it is streamed. The MIME type comes from the file extension,
        in the spelling Dify accepts (``audio/mp3``, not ``audio/mpeg``).
        """
        user_id = self._optional_user(user)
        upload = Upload.prepare(
            file, filename=filename, content_type=content_type, type_overrides=AUDIO_TYPES
        )
        try:
            data = await self._http.request_json(
                "POST",
                "/audio-to-text",
                data=upload.form(user=user_id),
                timeout=self._timeout(timeout),
                max_retries=max_retries,
            )
        finally:
            upload.close()
        what = "the transcription"
        return structure(json_object(data, what=what).get("text"), str, what=what)

    async def to_speech(
        self,
        *,
        text: str | None = None,
        message_id: str | None = None,
        voice: str | None = None,
        user: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> bytes:
        """Synthesize ``text``, or the answer ``message_id`` (which wins if both are given).

        Returns the audio bytes (mp3 or wav, depending on the TTS provider).
        """
        check_str(text, "text", optional=True)
        check_str(message_id, "message_id", optional=True)
        check_str(voice, "voice", optional=True)
        if text is None and message_id is None:
            raise ValueError("to_speech needs text or message_id")
        body: dict[str, Any] = {}
        for key, value in (
            ("message_id", message_id),
            ("text", text),
            ("voice", voice),
            ("user", self._optional_user(user)),
        ):
            if value is not None:
                body[key] = value
        response = await self._http.request(
            "POST",
            "/text-to-audio",
            json=body,
            timeout=self._timeout(timeout),
            max_retries=max_retries,
        )
        return response.body


class AsyncAudioRaw(AsyncRawResponses):
    """``with_raw_response`` of :class:`AsyncAudio`: its methods, each returning a
    :class:`~chatapi.RawResponse`."""

    to_speech = raw(AsyncAudio.to_speech)
    to_text = raw(AsyncAudio.to_text)
