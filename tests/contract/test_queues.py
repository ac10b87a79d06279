"""The queue contract: visibility timeouts, dequeue counts and pop receipts."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.queue import StorageErrorCode

from tests.contract.conftest import Backend


async def _receive(queue: Any, **kwargs: Any) -> list[Any]:
    return [message async for message in queue.receive_messages(**kwargs)]


async def test_a_received_message_is_invisible_until_its_timeout_then_comes_back_counted(backend: Backend) -> None:
    queue = backend.storage.deliveries
    await queue.send_message("one", time_to_live=-1)
    [message] = await _receive(queue, visibility_timeout=1)
    assert (message.content, message.dequeue_count) == ("one", 1)
    assert await _receive(queue, visibility_timeout=1) == []
    await backend.wait(1.5)
    [again] = await _receive(queue, visibility_timeout=30)
    assert (again.content, again.dequeue_count, again.id) == ("one", 2, message.id)


async def test_a_message_sent_with_a_delay_appears_after_it(backend: Backend) -> None:
    queue = backend.storage.deliveries
    await queue.send_message("later", visibility_timeout=1)
    await queue.send_message("now")
    assert [m.content for m in await _receive(queue)] == ["now"]
    await backend.wait(1.5)
    assert [m.content for m in await _receive(queue)] == ["later"]


async def test_update_and_delete_need_the_latest_pop_receipt(backend: Backend) -> None:
    queue = backend.storage.deliveries
    await queue.send_message("m")
    [message] = await _receive(queue, visibility_timeout=30)
    updated = await queue.update_message(message, visibility_timeout=0)
    assert updated.pop_receipt != message.pop_receipt
    for stale in (queue.delete_message(message), queue.update_message(message, visibility_timeout=0)):
        with pytest.raises(HttpResponseError) as raised:
            await stale
        assert raised.value.error_code == StorageErrorCode.POP_RECEIPT_MISMATCH
    [visible] = await _receive(queue, visibility_timeout=30)
    assert visible.dequeue_count == 2
    await queue.delete_message(visible)
    with pytest.raises(ResourceNotFoundError):
        await queue.delete_message(visible)
    assert await _receive(queue) == []


async def test_peek_leaves_messages_as_they_are_and_receive_takes_at_most_max_messages(backend: Backend) -> None:
    queue = backend.storage.deliveries
    for text in ("a", "b", "c"):
        await queue.send_message(text)
    assert [m.content for m in await queue.peek_messages()] == ["a"]
    assert [(m.content, m.dequeue_count) for m in await queue.peek_messages(max_messages=5)] == [
        ("a", 0), ("b", 0), ("c", 0)]
    assert [m.content for m in await _receive(queue, max_messages=2, visibility_timeout=30)] == ["a", "b"]
    assert [m.content for m in await queue.peek_messages(max_messages=5)] == ["c"]


async def test_a_queue_that_was_not_created_is_not_found(backend: Backend) -> None:
    queue = backend.storage.queue(backend.storage.prefix + "-absent")
    with pytest.raises(ResourceNotFoundError):
        await queue.send_message("x")
    await queue.close()
