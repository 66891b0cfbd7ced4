"""One chat run of the fake app: the events of each app mode, stop, and the pause.

The event shapes and their order follow the recorded Dify 1.15.0 Chatflow streams: an
initial ping, ``workflow_started``, ``node_started``/``node_finished`` per node, the answer in
``message`` chunks while the LLM node runs, then ``message_end`` and ``workflow_finished``.
A stopped run ends with ``workflow_finished`` (status ``stopped``) and ``message_end``, or
(``script.stop_as_failure()``) with a ``failed`` one, as Dify 1.15 often reports a stop.
Chatbot apps send ``message`` chunks and ``message_end``; agent apps ``agent_thought``,
``agent_message`` chunks and ``message_end``.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING, Any

from ._human_input import form_for, required_data
from ._load import SENT_AT_FIELD
from ._payloads import NodeExecution, envelope, finished_data, paused_data, usage_json
from ._script import RunPlan, split_tokens
from ._state import Conversation, EndUser, Message, WorkflowRun
from ._stream import EventStream, StreamEnded, wait_or_wake
from ._wire import encode_event, new_id

if TYPE_CHECKING:
    from ._context import Context

__all__ = ["ChatRun"]

_FLOOD_BATCH = 512


class ChatRun:
    """A run started by ``POST /chat-messages``; streamed when ``stream`` is set."""

    def __init__(
        self,
        ctx: Context,
        *,
        owner: EndUser,
        conversation: Conversation,
        message: Message,
        plan: RunPlan,
        answer_text: str,
    ) -> None:
        self.ctx = ctx
        self.owner = owner
        self.conversation = conversation
        self.message = message
        self.plan = plan
        self.answer_text = answer_text
        self.task_id = new_id()
        self.stream: EventStream | None = None
        self.stop_requested = False
        self.usage: dict[str, Any] | None = None
        self.paused: dict[str, Any] | None = None
        self._wake = ctx.waker()
        self._events_sent = 0
        self._started = time.monotonic()
        self._completion_tokens = 0
        self._first_token: float | None = None
        self._last_token: float | None = None
        self.workflow: WorkflowRun | None = None
        if ctx.is_workflow:
            self.workflow = WorkflowRun(
                workflow_id=ctx.workflow_id,
                owner=owner,
                inputs=dict(message.inputs),
                task_id=self.task_id,
                conversation_id=conversation.id,
                message=message,
            )
            ctx.store.runs[self.workflow.id] = self.workflow

    # -- control --------------------------------------------------------------------------

    def request_stop(self) -> None:
        """What the stop endpoint does: the run ends at its next step."""
        self.stop_requested = True
        self._wake.set()

    def close(self) -> None:
        """Settle the records of a run that ended early (client gone, fault); let go."""
        self.ctx.wakers.discard(self._wake)
        run = self.workflow
        if run is not None and run.status == "running":
            # A run whose client left (or was cut off) ends where it was.
            run.finish("stopped", outputs={"answer": self.message.answer})

    async def idle(self, seconds: float) -> None:
        if self.stream is not None:
            await self.stream.idle(seconds, self._wake)
        else:
            await wait_or_wake(seconds, self._wake)

    # -- events ---------------------------------------------------------------------------

    def envelope(self, event: str) -> dict[str, Any]:
        return envelope(
            event,
            conversation_id=self.conversation.id,
            message_id=self.message.id,
            created_at=self.message.created_at,
            task_id=self.task_id,
        )

    def workflow_event(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        assert self.workflow is not None
        payload = self.envelope(event)
        payload["workflow_run_id"] = self.workflow.id
        payload["data"] = data
        if event.startswith("node_") or event == "workflow_started":
            self.workflow.node_events.append(payload)
        return payload

    async def emit(self, payload: dict[str, Any]) -> None:
        if self.stream is not None:
            await self._send([encode_event(payload)])

    async def _send(self, encoded: list[bytes]) -> None:
        """Write encoded events, honouring the ``error_event`` fault of the plan."""
        stream = self.stream
        assert stream is not None
        error_after = self.plan.error_after
        if error_after is not None and self._events_sent + len(encoded) > error_after:
            allowed = max(error_after - self._events_sent, 0)
            if allowed:
                await stream.write(b"".join(encoded[:allowed]))
            await self._send_error()
            raise StreamEnded
        self._events_sent += len(encoded)
        await stream.write(encoded[0] if len(encoded) == 1 else b"".join(encoded))

    def error_event(self, error: dict[str, Any]) -> dict[str, Any]:
        """The ``error`` event (it has no ``task_id``)."""
        return {
            "event": "error",
            "conversation_id": self.conversation.id,
            "message_id": self.message.id,
            "created_at": self.message.created_at,
            "code": error.get("code"),
            "status": error.get("status"),
            "message": error.get("message"),
        }

    async def _send_error(self) -> None:
        assert self.stream is not None
        error = self.plan.error or {}
        payload = self.error_event(error)
        self.message.status = "error"
        self.ctx.load.errors += 1
        self.message.error = error.get("message")
        if self.workflow is not None:
            self.workflow.finish("failed", outputs={}, error=f"Run failed: {error.get('message')}")
        await self.stream.write(encode_event(payload))

    # -- the run --------------------------------------------------------------------------

    async def play(self) -> None:
        """Produce the whole run (into the stream, if any)."""
        try:
            if self.plan.pings_only:
                if self.stream is not None:
                    await self.stream.ping()
                await self._idle_forever(self.plan.ping_interval)
                return
            await self.play_events()
            # No await since the last event was handed to the transport: a client that
            # leaves after reading it cannot cancel this count away.
            if self.stream is not None and not self.stop_requested and self.paused is None:
                self.ctx.load.completed += 1
            if self.plan.keep_open:
                await self._idle_forever(None)
        except StreamEnded:
            return

    async def play_events(self) -> None:
        """The events of the app mode, from the first to the closing one."""
        if self.ctx.mode == "advanced-chat":
            await self._play_chatflow()
        elif self.ctx.mode == "agent-chat":
            await self._play_agent()
        else:
            await self._play_chat()

    async def _idle_forever(self, interval: float | None) -> None:
        if self.stream is None:
            return
        if interval is not None:
            self.stream.ping_interval = interval
        await self.idle(math.inf)

    async def _generate(self, event: str, selector: list[str] | None) -> None:
        """Send the answer in chunks: the run's LLM at work."""
        if self.plan.flood is not None and self.stream is not None:
            await self._flood(self.plan.flood, event, selector)
            return
        delay = self.ctx.script.chunk_delay
        load = self.ctx.load
        chunks = load.shape(self.answer_text) or self.ctx.script.chunks(self.answer_text)
        if load.settings.first_token_delay:
            await self.idle(load.settings.first_token_delay)
        for chunk in chunks:
            if delay:
                await self.idle(delay)
            else:
                # Lets a stop request arrive between two chunks.
                await asyncio.sleep(0)
            if self.stop_requested:
                return
            self._add_answer(chunk)
            self._completion_tokens += len(split_tokens(chunk))
            await self.emit(self._chunk_event(event, chunk, selector))

    def _chunk_event(self, event: str, chunk: str, selector: list[str] | None) -> dict[str, Any]:
        payload = self.envelope(event)
        payload["id"] = self.message.id
        payload["answer"] = chunk
        if event == "message":
            payload["from_variable_selector"] = selector
        if self.ctx.load.settings.stamp_send_times:
            payload[SENT_AT_FIELD] = time.monotonic()
        return payload

    def _add_answer(self, chunk: str) -> None:
        moment = time.monotonic()
        if self._first_token is None:
            self._first_token = moment
        self._last_token = moment
        self.message.answer += chunk

    async def _flood(self, count: int, event: str, selector: list[str] | None) -> None:
        tokens = split_tokens(self.answer_text) or ["x"]
        encoded: dict[str, bytes] = {}
        batch: list[bytes] = []
        parts: list[str] = []
        for index in range(count):
            token = tokens[index % len(tokens)]
            data = encoded.get(token)
            if data is None:
                data = encoded[token] = encode_event(self._chunk_event(event, token, selector))
            batch.append(data)
            parts.append(token)
            if len(batch) == _FLOOD_BATCH or index == count - 1:
                if self._first_token is None:
                    self._first_token = time.monotonic()
                self.message.answer += "".join(parts)
                self._completion_tokens += len(parts)
                await self._send(batch)
                batch = []
                parts = []
                if self.stop_requested:
                    break
        self._last_token = time.monotonic()

    def _finish_usage(self) -> dict[str, Any]:
        first, last = self._first_token, self._last_token
        self.usage = usage_json(
            len(split_tokens(self.message.query)),
            self._completion_tokens,
            latency=time.monotonic() - self._started,
            time_to_first_token=round(first - self._started, 3) if first is not None else None,
            time_to_generate=round(last - first, 3) if first is not None and last else None,
        )
        return self.usage

    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "annotation_reply": None,
            "retriever_resources": [],
            "usage": self.usage,
        }
        if self.ctx.is_workflow:
            metadata["reasoning"] = {}
        return metadata

    def _message_end(self) -> dict[str, Any]:
        payload = self.envelope("message_end")
        payload["id"] = self.message.id
        payload["metadata"] = self.metadata()
        if self.ctx.is_workflow:
            payload["files"] = []
        else:
            files = [f.message_end_json(self.ctx.origin) for f in self.message.files]
            payload["files"] = files or None
        return payload

    async def _play_chat(self) -> None:
        await self._generate("message", None)
        self._finish_usage()
        await self.emit(self._message_end())

    async def _play_agent(self) -> None:
        thought_id = new_id()

        def thought(text: str) -> dict[str, Any]:
            payload = self.envelope("agent_thought")
            payload.update(
                id=thought_id,
                position=1,
                thought=text,
                observation="",
                tool="",
                tool_labels={},
                tool_input="",
                message_files=[],
            )
            return payload

        await self.emit(thought(""))
        await self._generate("agent_message", None)
        self._finish_usage()
        await self.emit(thought(self.message.answer))
        self.message.agent_thoughts = [
            {
                "id": thought_id,
                "chain_id": None,
                "message_id": self.message.id,
                "position": 1,
                "thought": self.message.answer,
                "tool": "",
                "tool_labels": {},
                "tool_input": "",
                "observation": "",
                "files": [],
                "created_at": self.message.created_at,
            }
        ]
        await self.emit(self._message_end())

    def _system_inputs(self) -> dict[str, Any]:
        assert self.workflow is not None
        return {
            **self.message.inputs,
            "sys.query": self.message.query,
            "sys.files": [f.message_end_json(self.ctx.origin) for f in self.message.files],
            "sys.user_id": self.owner.session_id,
            "sys.dialogue_count": len(self.conversation.messages),
            "sys.app_id": self.ctx.app_id,
            "sys.workflow_id": self.ctx.workflow_id,
            "sys.workflow_run_id": self.workflow.id,
        }

    def _workflow_finished(self) -> dict[str, Any]:
        run = self.workflow
        assert run is not None
        return self.workflow_event("workflow_finished", finished_data(run))

    async def _play_chatflow(self) -> None:
        run = self.workflow
        assert run is not None
        if self.stream is not None:
            # Dify 1.13+ opens every Chatflow stream with a ping.
            await self.stream.ping()
        inputs = self.message.inputs
        await self.emit(
            self.workflow_event(
                "workflow_started",
                {
                    "id": run.id,
                    "workflow_id": run.workflow_id,
                    "inputs": self._system_inputs(),
                    "created_at": run.created_at,
                    "reason": "initial",
                },
            )
        )
        start = NodeExecution("start", "start", "Start")
        await self.emit(self.workflow_event("node_started", start.started()))
        await self.emit(
            self.workflow_event("node_finished", start.finished(inputs=inputs, outputs=inputs))
        )
        llm = NodeExecution("llm", "llm", "LLM")
        await self.emit(self.workflow_event("node_started", llm.started()))
        await self._generate("message", ["llm", "text"])
        usage = self._finish_usage()
        stopped = self.stop_requested
        await self.emit(
            self.workflow_event(
                "node_finished",
                llm.finished(
                    inputs={},
                    outputs={
                        "text": self.message.answer,
                        "reasoning_content": "",
                        "usage": usage,
                        "finish_reason": "stop",
                    },
                    process_data={
                        "model_mode": "chat",
                        "prompts": [{"role": "user", "text": self.message.query, "files": []}],
                        "usage": usage,
                        "finish_reason": "stop",
                        "model_provider": "fake",
                        "model_name": "fake-echo",
                    },
                    status="stopped" if stopped else "succeeded",
                    execution_metadata={
                        "total_tokens": usage["total_tokens"],
                        "total_price": usage["total_price"],
                        "currency": usage["currency"],
                    },
                ),
            )
        )
        run.total_tokens = usage["total_tokens"]
        run.total_steps = 2
        if stopped:
            if self.plan.stop_as_failure:
                run.finish("failed", outputs={}, error="Aborted: User requested stop")
                await self.emit(self._workflow_finished())
                # The run's record says stopped, as Dify's get_run does afterwards.
                run.status = "stopped"
                return
            run.finish("stopped", outputs={"answer": self.message.answer})
            await self.emit(self._workflow_finished())
            await self.emit(self._message_end())
            return
        if self.plan.pause_for_input:
            await self._pause()
            return
        answer = NodeExecution("answer", "answer", "Answer")
        await self.emit(self.workflow_event("node_started", answer.started()))
        outputs = {"answer": self.message.answer, "files": []}
        await self.emit(
            self.workflow_event("node_finished", answer.finished(inputs={}, outputs=outputs))
        )
        run.total_steps = 3
        run.finish("succeeded", outputs=outputs)
        await self.emit(self._message_end())
        await self.emit(self._workflow_finished())

    async def _pause(self) -> None:
        run = self.workflow
        assert run is not None
        form = form_for(run, self.message.query)
        run.form = form
        self.ctx.store.forms[form.token] = form
        review = NodeExecution(form.node_id, "human-input", form.node_title)
        await self.emit(self.workflow_event("node_started", review.started()))
        run.status = "paused"
        run.total_steps = 3
        run.elapsed_time = round(time.monotonic() - run.started, 6)
        await self.emit(self.workflow_event("human_input_required", required_data(form)))
        self.paused = paused_data(run)
        await self.emit(self.workflow_event("workflow_paused", self.paused))

    def blocking_body(self) -> dict[str, Any]:
        """The answer of a blocking request (key order of the recorded bodies)."""
        body: dict[str, Any] = {
            "event": "workflow_paused" if self.paused is not None else "message",
            "task_id": self.task_id,
            "id": self.message.id,
            "message_id": self.message.id,
            "conversation_id": self.conversation.id,
            "mode": self.ctx.mode,
            "answer": self.message.answer,
            "metadata": self.metadata(),
            "created_at": self.message.created_at,
        }
        if self.paused is not None and self.workflow is not None:
            body["metadata"]["usage"] = None
            body["workflow_run_id"] = self.workflow.id
            body["data"] = {
                "id": self.message.id,
                "mode": self.ctx.mode,
                "conversation_id": self.conversation.id,
                "message_id": self.message.id,
                "workflow_run_id": self.workflow.id,
                "answer": self.message.answer,
                "metadata": body["metadata"],
                "created_at": self.message.created_at,
                **{k: v for k, v in self.paused.items() if k not in ("workflow_run_id", "outputs")},
            }
        return body
