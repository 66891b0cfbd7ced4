"""Response models of the Dify chat API.

Every model is a frozen attrs class whose field names are Dify's wire names. Decoding is
lenient in the way the API needs: a missing optional field becomes ``None``, an unknown
extra field is ignored (models with a ``raw`` attribute keep the whole decoded JSON there).
Decimal amounts (prices) stay strings, as Dify sends them; timestamps are Unix seconds.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "AnnotationReply",
    "ChatCompletion",
    "FormAction",
    "FormInput",
    "InputFile",
    "MessageEndFile",
    "MessageMetadata",
    "PauseReason",
    "RetrieverResource",
    "Usage",
    "WorkflowPausedData",
]


@attrs.frozen(kw_only=True)
class Usage:
    """Token counts, prices and timings of one model run (prices are decimal strings)."""

    prompt_tokens: int | None = None
    prompt_unit_price: str | None = None
    prompt_price_unit: str | None = None
    prompt_price: str | None = None
    completion_tokens: int | None = None
    completion_unit_price: str | None = None
    completion_price_unit: str | None = None
    completion_price: str | None = None
    total_tokens: int | None = None
    total_price: str | None = None
    currency: str | None = None
    latency: float | None = None
    time_to_first_token: float | None = None
    time_to_generate: float | None = None


@attrs.frozen(kw_only=True)
class RetrieverResource:
    """A knowledge-base passage the answer cited."""

    id: str | None = None
    message_id: str | None = None
    position: int | None = None
    dataset_id: str | None = None
    dataset_name: str | None = None
    document_id: str | None = None
    document_name: str | None = None
    data_source_type: str | None = None
    segment_id: str | None = None
    retriever_from: str | None = None
    score: float | None = None
    hit_count: int | None = None
    word_count: int | None = None
    segment_position: int | None = None
    index_node_hash: str | None = None
    content: str | None = None
    page: int | None = None
    doc_metadata: Any = None
    title: str | None = None
    files: Any = None
    summary: str | None = None
    created_at: int | None = None


@attrs.frozen(kw_only=True)
class AnnotationReply:
    """The annotation that answered the query instead of the model, and who wrote it."""

    id: str | None = None
    account: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class MessageMetadata:
    """Metadata of an answer: usage, citations, annotation reply and separated reasoning."""

    usage: Usage | None = None
    retriever_resources: list[RetrieverResource] = attrs.field(factory=list)
    annotation_reply: AnnotationReply | None = None
    reasoning: dict[str, str] | None = None


@attrs.frozen(kw_only=True)
class MessageEndFile:
    """A file attached to a message, as listed by ``message_end``."""

    related_id: str | None = None
    extension: str | None = None
    filename: str | None = None
    size: int | None = None
    mime_type: str | None = None
    transfer_method: str | None = None
    type: str | None = None
    url: str | None = None
    upload_file_id: str | None = None
    remote_url: str | None = None


@attrs.frozen(kw_only=True)
class FormAction:
    """A button of a Human Input form; submit its ``id`` as the action."""

    id: str
    title: str | None = None
    button_style: str | None = None


@attrs.frozen(kw_only=True)
class FormInput:
    """One field of a Human Input form, filled in under ``output_variable_name``."""

    output_variable_name: str
    type: str | None = None
    default: dict[str, Any] | None = None
    option_source: dict[str, Any] | None = None
    allowed_file_types: list[str] | None = None
    allowed_file_extensions: list[str] | None = None
    allowed_file_upload_methods: list[str] | None = None
    number_limits: int | None = None


@attrs.frozen(kw_only=True)
class PauseReason:
    """Why a run paused. For a Human Input node (``type == "human_input_required"``) it
    describes the form: its id and token, the text, the inputs and the actions."""

    type: str | None = None
    form_id: str | None = None
    form_content: str | None = None
    inputs: list[FormInput] = attrs.field(factory=list)
    actions: list[FormAction] = attrs.field(factory=list)
    node_id: str | None = None
    node_title: str | None = None
    display_in_ui: bool | None = None
    form_token: str | None = None
    approval_channels: list[str] | None = None
    resolved_default_values: dict[str, Any] | None = None
    expiration_time: int | None = None


@attrs.frozen(kw_only=True)
class WorkflowPausedData:
    """The state of a run paused at a Human Input node (``workflow_paused``)."""

    workflow_run_id: str | None = None
    paused_nodes: list[str] = attrs.field(factory=list)
    outputs: dict[str, Any] | None = None
    reasons: list[PauseReason] = attrs.field(factory=list)
    status: str | None = None
    created_at: int | None = None
    elapsed_time: float | None = None
    total_tokens: int | None = None
    total_steps: int | None = None


@attrs.frozen(kw_only=True)
class ChatCompletion:
    """A complete answer: what ``chat.send`` returns and ``stream.final_message()`` builds.

    ``event`` is ``"message"`` for a finished answer and ``"workflow_paused"`` when a Chatflow
    run stopped at a Human Input node; then ``workflow_run_id`` and ``data`` (paused nodes,
    form reasons with ``form_id``, inputs and actions) say how to resume it.
    """

    event: str = "message"
    task_id: str | None = None
    id: str | None = None
    message_id: str | None = None
    conversation_id: str | None = None
    mode: str | None = None
    answer: str = ""
    metadata: MessageMetadata = attrs.field(factory=MessageMetadata)
    created_at: int | None = None
    workflow_run_id: str | None = None
    files: list[MessageEndFile] | None = None
    data: WorkflowPausedData | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def paused(self) -> bool:
        """True when the run is waiting for a Human Input form to be submitted."""
        return self.event == "workflow_paused"

    @property
    def usage(self) -> Usage | None:
        """Shortcut for ``metadata.usage``."""
        return self.metadata.usage


@attrs.frozen(kw_only=True)
class InputFile:
    """A file to attach to a chat message: an uploaded file or a URL.

    Build one with :meth:`local` (an ``upload_file_id`` from ``files.upload``) or
    :meth:`remote` (a URL the server fetches). ``type`` is ``image``, ``document``,
    ``audio``, ``video`` or ``custom``.
    """

    type: str
    transfer_method: str
    url: str | None = None
    upload_file_id: str | None = None

    @classmethod
    def local(cls, upload_file_id: str, *, type: str = "image") -> InputFile:
        """A file uploaded with ``files.upload`` (same ``user``)."""
        return cls(type=type, transfer_method="local_file", upload_file_id=upload_file_id)

    @classmethod
    def remote(cls, url: str, *, type: str = "image") -> InputFile:
        """A file the server downloads from ``url``."""
        return cls(type=type, transfer_method="remote_url", url=url)
