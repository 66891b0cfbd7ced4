"""Response models of the Dify chat API.

Every model is a frozen attrs class whose field names are Dify's wire names. Decoding is
lenient in the way the API needs: a missing optional field becomes ``None``, an unknown
extra field is ignored (models with a ``raw`` attribute keep the whole decoded JSON there).
Decimal amounts (prices) stay strings, as Dify sends them; timestamps are Unix seconds,
except in app feedback lists and end-user details, where Dify sends ISO 8601 strings.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import attrs

from ._serialize import Serializable

__all__ = [
    "AgentThought",
    "Annotation",
    "AnnotationReply",
    "AnnotationReplyJob",
    "AppInfo",
    "AppMeta",
    "AppParameters",
    "ChatCompletion",
    "Conversation",
    "ConversationVariable",
    "EndUser",
    "EndUserSummary",
    "FeatureToggle",
    "Feedback",
    "FileContent",
    "FormAction",
    "FormInput",
    "HumanInputForm",
    "HumanInputFormDefinition",
    "HumanInputFormSubmission",
    "InputFile",
    "Message",
    "MessageEndFile",
    "MessageExtraContent",
    "MessageFeedback",
    "MessageFile",
    "MessageMetadata",
    "Page",
    "PauseReason",
    "RetrieverResource",
    "SiteSettings",
    "SystemParameters",
    "TextToSpeechSettings",
    "UploadedFile",
    "Usage",
    "WorkflowLog",
    "WorkflowPausedData",
    "WorkflowRun",
    "WorkflowRunData",
    "WorkflowRunResult",
    "WorkflowRunSummary",
]


@attrs.frozen(kw_only=True)
class Usage(Serializable):
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
class RetrieverResource(Serializable):
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
class AnnotationReply(Serializable):
    """The annotation that answered the query instead of the model, and who wrote it."""

    id: str | None = None
    account: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class MessageMetadata(Serializable):
    """Metadata of an answer: usage, citations, annotation reply and separated reasoning."""

    usage: Usage | None = None
    retriever_resources: list[RetrieverResource] = attrs.field(factory=list)
    annotation_reply: AnnotationReply | None = None
    reasoning: dict[str, str] | None = None


@attrs.frozen(kw_only=True)
class MessageEndFile(Serializable):
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
class FormAction(Serializable):
    """A button of a Human Input form; submit its ``id`` as the action."""

    id: str
    title: str | None = None
    button_style: str | None = None


@attrs.frozen(kw_only=True)
class FormInput(Serializable):
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
class HumanInputFormDefinition(Serializable):
    """A Human Input form: its text, inputs, actions and the ``form_token`` to submit it.

    As kept in the conversation history; pause reasons and ``human_input_required`` events
    describe their form with the same fields.
    """

    form_id: str | None = None
    node_id: str | None = None
    node_title: str | None = None
    form_content: str | None = None
    inputs: list[FormInput] = attrs.field(factory=list)
    actions: list[FormAction] = attrs.field(factory=list)
    display_in_ui: bool | None = None
    form_token: str | None = None
    resolved_default_values: dict[str, Any] | None = None
    expiration_time: int | None = None


@attrs.frozen(kw_only=True)
class PauseReason(HumanInputFormDefinition):
    """Why a run paused. For a Human Input node (``type == "human_input_required"``) it
    describes the form: its id and token, the text, the inputs and the actions."""

    type: str | None = None
    approval_channels: list[str] | None = None


@attrs.frozen(kw_only=True)
class WorkflowPausedData(Serializable):
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
class ChatCompletion(Serializable):
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
class InputFile(Serializable):
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


# -- pages ---------------------------------------------------------------------------------

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Page(Serializable, Generic[T]):
    """One page of a list endpoint.

    ``has_more`` says whether another page follows. Cursor-style lists (messages,
    conversations, variables) send ``limit``; page-style lists (feedbacks, annotations,
    workflow logs) also have ``page`` and, where Dify sends it, ``total``.
    """

    data: list[T] = attrs.field(factory=list)
    has_more: bool = False
    limit: int | None = None
    page: int | None = None
    total: int | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


# -- messages and conversations ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class MessageFile(Serializable):
    """A file attached to a message in the conversation history."""

    id: str | None = None
    filename: str | None = None
    type: str | None = None
    url: str | None = None
    mime_type: str | None = None
    size: int | None = None
    transfer_method: str | None = None
    belongs_to: str | None = None
    upload_file_id: str | None = None


@attrs.frozen(kw_only=True)
class MessageFeedback(Serializable):
    """The end user's rating of a message (``like`` or ``dislike``)."""

    rating: str | None = None


@attrs.frozen(kw_only=True)
class AgentThought(Serializable):
    """One reasoning step of an agent: the thought, the tool call and what it returned.

    ``tool_input`` is JSON text, as Dify sends it; ``files`` are file ids.
    """

    id: str | None = None
    chain_id: str | None = None
    message_id: str | None = None
    position: int | None = None
    thought: str | None = None
    tool: str | None = None
    tool_labels: dict[str, Any] | None = None
    tool_input: str | None = None
    observation: str | None = None
    files: list[str] = attrs.field(factory=list)
    created_at: int | None = None


@attrs.frozen(kw_only=True)
class HumanInputFormSubmission(Serializable):
    """What was submitted to a Human Input form: the chosen action and the values."""

    node_id: str | None = None
    node_title: str | None = None
    rendered_content: str | None = None
    action_id: str | None = None
    action_text: str | None = None
    submitted_data: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class MessageExtraContent(Serializable):
    """Extra content of a message; today a Human Input form (``type == "human_input"``)."""

    type: str | None = None
    workflow_run_id: str | None = None
    submitted: bool | None = None
    form_definition: HumanInputFormDefinition | None = None
    form_submission_data: HumanInputFormSubmission | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class Message(Serializable):
    """One turn of a conversation: the user's ``query`` and the app's ``answer``.

    The token and price fields are only sent by Dify 1.16 and later.
    """

    id: str
    conversation_id: str | None = None
    parent_message_id: str | None = None
    inputs: dict[str, Any] | None = None
    query: str | None = None
    answer: str | None = None
    status: str | None = None
    error: str | None = None
    message_files: list[MessageFile] = attrs.field(factory=list)
    feedback: MessageFeedback | None = None
    retriever_resources: list[RetrieverResource] = attrs.field(factory=list)
    agent_thoughts: list[AgentThought] = attrs.field(factory=list)
    extra_contents: list[MessageExtraContent] = attrs.field(factory=list)
    created_at: int | None = None
    message_tokens: int | None = None
    answer_tokens: int | None = None
    total_tokens: int | None = None
    provider_response_latency: float | None = None
    total_price: str | None = None
    currency: str | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class Conversation(Serializable):
    """A conversation of the end user with the app."""

    id: str
    name: str | None = None
    inputs: dict[str, Any] | None = None
    status: str | None = None
    introduction: str | None = None
    created_at: int | None = None
    updated_at: int | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class ConversationVariable(Serializable):
    """A conversation variable of a Chatflow.

    Dify sends ``value`` as text (JSON text for objects and arrays); it is kept as sent.
    """

    id: str
    name: str | None = None
    value_type: str | None = None
    value: Any = None
    description: str | None = None
    created_at: int | None = None
    updated_at: int | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class Feedback(Serializable):
    """A like or dislike given to a message of the app (timestamps are ISO 8601 text)."""

    id: str
    app_id: str | None = None
    conversation_id: str | None = None
    message_id: str | None = None
    rating: str | None = None
    content: str | None = None
    from_source: str | None = None
    from_end_user_id: str | None = None
    from_account_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


# -- files ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class UploadedFile(Serializable):
    """A file stored by ``files.upload``; attach it to a message with its ``id``."""

    id: str
    name: str | None = None
    size: int | None = None
    extension: str | None = None
    mime_type: str | None = None
    created_by: str | None = None
    created_at: int | None = None
    preview_url: str | None = None
    source_url: str | None = None
    original_url: str | None = None
    user_id: str | None = None
    tenant_id: str | None = None
    conversation_id: str | None = None
    file_key: str | None = None
    reference: str | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class FileContent(Serializable):
    """The bytes of a file from ``files.preview``, with the type and name the server gave."""

    content: bytes = attrs.field(repr=False)
    content_type: str | None = None
    filename: str | None = None

    @property
    def size(self) -> int:
        return len(self.content)


# -- app and end users ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class EndUser(Serializable):
    """An end user of the app; ``session_id`` is the ``user`` string the API calls carry."""

    id: str
    tenant_id: str | None = None
    app_id: str | None = None
    type: str | None = None
    external_user_id: str | None = None
    name: str | None = None
    is_anonymous: bool | None = None
    session_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class AppInfo(Serializable):
    """Name, description, tags, mode and author of the app."""

    name: str | None = None
    description: str | None = None
    tags: list[str] = attrs.field(factory=list)
    mode: str | None = None
    author_name: str | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class FeatureToggle(Serializable):
    """A feature switch of the app; its other settings, if any, are in ``raw``."""

    enabled: bool | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class TextToSpeechSettings(Serializable):
    """Text-to-speech settings; ``autoPlay`` is ``"enabled"`` or ``"disabled"``."""

    enabled: bool | None = None
    voice: str | None = None
    language: str | None = None
    autoPlay: str | None = None  # camelCase on the wire too
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class SystemParameters(Serializable):
    """Upload limits of the deployment (sizes in MB)."""

    file_size_limit: int | None = None
    image_file_size_limit: int | None = None
    audio_file_size_limit: int | None = None
    video_file_size_limit: int | None = None
    workflow_file_upload_limit: int | None = None


@attrs.frozen(kw_only=True)
class AppParameters(Serializable):
    """The app's input form, feature switches and upload limits.

    Each ``user_input_form`` item maps one control type (``text-input``, ``paragraph``,
    ``select``, ``number``, ``file``...) to its settings (``variable``, ``label``,
    ``required``...).
    """

    opening_statement: str | None = None
    suggested_questions: list[str] = attrs.field(factory=list)
    suggested_questions_after_answer: FeatureToggle | None = None
    speech_to_text: FeatureToggle | None = None
    text_to_speech: TextToSpeechSettings | None = None
    retriever_resource: FeatureToggle | None = None
    annotation_reply: FeatureToggle | None = None
    more_like_this: FeatureToggle | None = None
    sensitive_word_avoidance: FeatureToggle | None = None
    user_input_form: list[dict[str, Any]] = attrs.field(factory=list)
    file_upload: dict[str, Any] | None = None
    system_parameters: SystemParameters | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class AppMeta(Serializable):
    """Tool icons by tool name: a URL, or ``{"background", "content"}`` for an emoji."""

    tool_icons: dict[str, Any] = attrs.field(factory=dict)
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class SiteSettings(Serializable):
    """The WebApp's branding: title, colours, icon, texts and language."""

    title: str | None = None
    chat_color_theme: str | None = None
    chat_color_theme_inverted: bool | None = None
    icon_type: str | None = None
    icon: str | None = None
    icon_background: str | None = None
    icon_url: str | None = None
    description: str | None = None
    copyright: str | None = None
    privacy_policy: str | None = None
    input_placeholder: str | None = None
    custom_disclaimer: str | None = None
    default_language: str | None = None
    show_workflow_steps: bool | None = None
    use_icon_as_answer_icon: bool | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


# -- annotations ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Annotation(Serializable):
    """A curated question/answer pair that can answer instead of the model."""

    id: str
    question: str | None = None
    answer: str | None = None
    hit_count: int | None = None
    created_at: int | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class AnnotationReplyJob(Serializable):
    """The background job that turns annotation reply on or off.

    ``job_status`` is ``waiting``, ``processing``, ``completed`` or ``error``.
    """

    job_id: str
    job_status: str | None = None
    error_msg: str | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


# -- workflow runs and Human Input ---------------------------------------------------------


@attrs.frozen(kw_only=True)
class WorkflowRun(Serializable):
    """The state and result of one Chatflow run.

    Dify sends ``inputs`` (and, before 1.15, ``outputs``) as JSON text: both arrive here
    decoded; ``raw`` keeps the body as sent.
    """

    id: str
    workflow_id: str | None = None
    status: str | None = None
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None
    total_steps: int | None = None
    total_tokens: int | None = None
    created_at: int | None = None
    finished_at: int | None = None
    elapsed_time: float | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class WorkflowRunSummary(Serializable):
    """A run as listed in the workflow logs."""

    id: str | None = None
    version: str | None = None
    status: str | None = None
    error: str | None = None
    elapsed_time: float | None = None
    total_tokens: int | None = None
    total_steps: int | None = None
    created_at: int | None = None
    finished_at: int | None = None
    exceptions_count: int | None = None
    triggered_from: str | None = None


@attrs.frozen(kw_only=True)
class EndUserSummary(Serializable):
    """The end user who started a logged run."""

    id: str | None = None
    type: str | None = None
    is_anonymous: bool | None = None
    session_id: str | None = None


@attrs.frozen(kw_only=True)
class WorkflowLog(Serializable):
    """One entry of the workflow logs: a run and who started it from where."""

    id: str
    workflow_run: WorkflowRunSummary | None = None
    created_from: str | None = None
    created_by_role: str | None = None
    created_by_account: dict[str, Any] | None = None
    created_by_end_user: EndUserSummary | None = None
    created_at: int | None = None
    details: Any = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class HumanInputForm(Serializable):
    """A Human Input form a paused run waits on: the text, the fields and the buttons.

    Submit it with ``human_input.submit`` using one of ``user_actions`` as the action.
    """

    form_content: str | None = None
    inputs: list[FormInput] = attrs.field(factory=list)
    resolved_default_values: dict[str, Any] | None = None
    user_actions: list[FormAction] = attrs.field(factory=list)
    expiration_time: int | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


# -- workflow apps (their own module, re-exported here: it needs PauseReason from above) -----

from ._app_models import WorkflowRunData, WorkflowRunResult  # noqa: E402
