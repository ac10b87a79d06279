"""An in-memory storage queue behind the interface of ``azure.storage.queue.aio.QueueClient``:
visibility timeouts, dequeue counts, pop receipts and time to live, on the service's clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueMessage, StorageErrorCode

from shared.storage.memory.service import MemoryService, pause, storage_error

_DEFAULT_TTL = 7 * 24 * 3600
_DEFAULT_VISIBILITY = 30
_FOREVER = datetime(9999, 12, 31, 23, 59, 59).astimezone()


@dataclass
class _Message:
    id: str
    content: Any
    inserted_on: datetime
    expires_on: datetime
    visible_on: datetime
    dequeue_count: int = 0
    pop_receipt: str | None = None

    def public(self) -> QueueMessage:
        return QueueMessage(content=self.content, id=self.id, inserted_on=self.inserted_on,
                            expires_on=self.expires_on, dequeue_count=self.dequeue_count,
                            pop_receipt=self.pop_receipt, next_visible_on=self.visible_on)


class MemoryQueue:
    """One queue of a :class:`MemoryService`."""

    def __init__(self, service: MemoryService, name: str) -> None:
        self.service = service
        self._name = name

    @property
    def queue_name(self) -> str:
        """The queue's name."""
        return self._name

    def _messages(self) -> list[_Message]:
        messages = self.service.queues.get(self._name)
        if messages is None:
            raise storage_error(ResourceNotFoundError, StorageErrorCode.QUEUE_NOT_FOUND,
                                "The specified queue does not exist.", 404)
        now = self.service.clock()
        messages[:] = [m for m in messages if m.expires_on > now]
        return messages

    def _received(self, message: str | QueueMessage, pop_receipt: str | None) -> _Message:
        """The stored message a receive handed out with ``pop_receipt`` (its latest)."""
        message_id = message if isinstance(message, str) else message.id
        receipt = pop_receipt or (None if isinstance(message, str) else message.pop_receipt)
        found = next((m for m in self._messages() if m.id == message_id), None)
        if found is None:
            raise storage_error(ResourceNotFoundError, StorageErrorCode.MESSAGE_NOT_FOUND,
                                "The specified message does not exist.", 404)
        if found.pop_receipt != receipt:
            raise storage_error(HttpResponseError, StorageErrorCode.POP_RECEIPT_MISMATCH,
                                "The specified pop receipt did not match the pop receipt for a dequeued message.", 400)
        return found

    async def create_queue(self, **kwargs: Any) -> None:
        """Create the queue; ResourceExistsError (QueueAlreadyExists) if it exists."""
        await pause()
        if self._name in self.service.queues:
            raise storage_error(ResourceExistsError, StorageErrorCode.QUEUE_ALREADY_EXISTS, "Queue already exists", 204)
        self.service.queues[self._name] = []

    async def send_message(self, content: object, *, visibility_timeout: int | None = None,
                           time_to_live: int | None = None, **kwargs: Any) -> QueueMessage:
        """Enqueue ``content``, invisible for ``visibility_timeout`` seconds; ``time_to_live=-1``: forever."""
        await pause()
        messages = self._messages()
        now = self.service.clock()
        ttl = _DEFAULT_TTL if time_to_live is None else time_to_live
        message = _Message(str(uuid.uuid4()), content, now, _FOREVER if ttl == -1 else now + timedelta(seconds=ttl),
                           now + timedelta(seconds=visibility_timeout or 0))
        messages.append(message)
        return QueueMessage(content=content, id=message.id, inserted_on=now, expires_on=message.expires_on,
                            next_visible_on=message.visible_on, pop_receipt=uuid.uuid4().hex)

    async def receive_messages(self, *, messages_per_page: int | None = None, visibility_timeout: int | None = None,
                               max_messages: int | None = None, **kwargs: Any) -> AsyncIterator[QueueMessage]:
        """Take up to ``max_messages`` visible messages (all of them by default), oldest first,
        each invisible for ``visibility_timeout`` seconds (30 by default)."""
        await pause()
        now = self.service.clock()
        taken = 0
        for message in list(self._messages()):
            if message.visible_on > now:
                continue
            if max_messages is not None and taken >= max_messages:
                return
            message.dequeue_count += 1
            message.pop_receipt = uuid.uuid4().hex
            message.visible_on = now + timedelta(seconds=_DEFAULT_VISIBILITY if visibility_timeout is None
                                                 else visibility_timeout)
            taken += 1
            yield message.public()

    async def peek_messages(self, max_messages: int | None = None, **kwargs: Any) -> list[QueueMessage]:
        """Up to ``max_messages`` (1 by default) visible messages, left as they are."""
        await pause()
        now = self.service.clock()
        visible = [m for m in self._messages() if m.visible_on <= now][:max_messages or 1]
        return [QueueMessage(content=m.content, id=m.id, inserted_on=m.inserted_on, expires_on=m.expires_on,
                             dequeue_count=m.dequeue_count) for m in visible]

    async def update_message(self, message: str | QueueMessage, pop_receipt: str | None = None,
                             content: object | None = None, *, visibility_timeout: int | None = None,
                             **kwargs: Any) -> QueueMessage:
        """Make a received message visible again after ``visibility_timeout`` seconds (a new pop receipt)."""
        await pause()
        found = self._received(message, pop_receipt)
        if content is not None:
            found.content = content
        found.pop_receipt = uuid.uuid4().hex
        found.visible_on = self.service.clock() + timedelta(seconds=visibility_timeout or 0)
        return found.public()

    async def delete_message(self, message: str | QueueMessage, pop_receipt: str | None = None,
                             **kwargs: Any) -> None:
        """Delete a received message."""
        await pause()
        found = self._received(message, pop_receipt)
        self._messages().remove(found)

    async def close(self) -> None:
        """Nothing to release."""
