"""A response's head leaves with its body in one write (``HeadWithBody``), and never waits
longer than the loop's current turn."""

from __future__ import annotations

import asyncio

from crm_hub.api.nodelay_httptools import HeadWithBody


class RecordingTransport:
    """What a response's transport was asked to write, call by call."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_a_head_and_body_written_in_one_turn_leave_in_one_write() -> None:
    async def respond() -> list[bytes]:
        raw = RecordingTransport()
        transport = HeadWithBody(raw)  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b'{"a": 1}')
        await asyncio.sleep(0)
        return raw.writes

    assert asyncio.run(respond()) == [b'HTTP/1.1 200 OK\r\n\r\n{"a": 1}']


def test_a_streamed_head_leaves_on_the_next_turn_and_later_chunks_follow_in_order() -> None:
    async def stream() -> tuple[list[bytes], list[bytes]]:
        raw = RecordingTransport()
        transport = HeadWithBody(raw)  # type: ignore[arg-type]
        transport.write(bytearray(b"HEAD"))
        await asyncio.sleep(0)
        after_one_turn = list(raw.writes)
        transport.write(b"chunk 1")
        transport.write(b"chunk 2")
        return after_one_turn, raw.writes

    after_one_turn, writes = asyncio.run(stream())
    assert after_one_turn == [b"HEAD"]
    assert writes == [b"HEAD", b"chunk 1", b"chunk 2"]


def test_closing_sends_a_held_head_first() -> None:
    async def close_early() -> RecordingTransport:
        raw = RecordingTransport()
        transport = HeadWithBody(raw)  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        transport.close()
        await asyncio.sleep(0)  # the cancelled-by-release flush must not write again
        return raw

    raw = asyncio.run(close_early())
    assert raw.writes == [b"HTTP/1.1 204 No Content\r\n\r\n"]
    assert raw.closed
