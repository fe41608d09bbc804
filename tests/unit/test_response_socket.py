"""``registry.workers.ResponseSocket``: how one response reaches the client socket under the gevent worker."""
from __future__ import annotations

from registry.workers import ResponseSocket


class FakeClientSocket:
    def __init__(self) -> None:
        self.sends: list[bytes] = []

    def sendall(self, data) -> None:
        self.sends.append(bytes(data))

    def send(self, data) -> int:
        self.sends.append(bytes(data))
        return len(data)

    def getpeername(self):
        return ("127.0.0.1", 1234)


HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"


def test_the_header_block_goes_out_with_the_first_body_bytes():
    client = FakeClientSocket()
    response = ResponseSocket(client)
    response.sendall(HEAD)
    assert client.sends == []
    response.sendall(b"{}")
    response.finish(complete=True)
    assert client.sends == [HEAD + b"{}"]
    assert response.getpeername() == ("127.0.0.1", 1234)  # everything else is the socket's


def test_a_header_block_without_a_body_is_sent_when_the_request_ends():
    client = FakeClientSocket()
    response = ResponseSocket(client)
    response.sendall(b"HTTP/1.1 304 Not Modified\r\n\r\n")
    response.finish(complete=True)
    assert client.sends == [b"HTTP/1.1 304 Not Modified\r\n\r\n"]


def test_answered_early_the_later_writes_are_dropped_and_nothing_is_reported():
    client, reported = FakeClientSocket(), []
    response = ResponseSocket(client)
    response.when_finished(reported.append)
    response.answer_now(HEAD + b"[]")
    response.sendall(HEAD)
    response.sendall(b"{}")
    assert response.send(b"xy") == 2
    response.finish(complete=True)
    assert client.sends == [HEAD + b"[]"]
    assert response.answered_early
    assert reported == [None]  # the early bytes were someone else's, not this response's own


def test_what_was_sent_is_reported_exactly_once_the_response_is_complete():
    client, reported = FakeClientSocket(), []
    response = ResponseSocket(client)
    response.when_finished(reported.append)
    response.sendall(HEAD)
    response.sendall(b"{")
    response.sendall(b"}")
    response.finish(complete=True)
    assert reported == [HEAD + b"{}"]
    assert b"".join(client.sends) == HEAD + b"{}"


def test_a_failed_or_partial_response_reports_nothing():
    client, failed, partial = FakeClientSocket(), [], []
    response = ResponseSocket(client)
    response.when_finished(failed.append)
    response.sendall(HEAD)
    response.finish(complete=False)  # gunicorn raised while writing it
    assert failed == [None]
    response = ResponseSocket(client)
    response.when_finished(partial.append)
    response.sendall(HEAD)
    response.send(b"{")  # send() may send part of it: what went out is not known exactly
    response.finish(complete=True)
    assert partial == [None]
