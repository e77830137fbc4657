"""Signed tokens of concurrent POST /v1/verify requests are verified together, in one
`verify_many` call per event-loop turn (`verifier/http/_coalesce.py`), with the verdicts
each request would get on its own; register links are looked up at once."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import httpx
import pytest
from socket_support import read_response

from keys.link_records import record_link, sample_record
from verifier import Verifier
from verifier.http._coalesce import Coalescer
from verifier.http.app import create_app


class _Recording:
    """A verifier that records how it was called (the real one does the work)."""

    def __init__(self, inner: Verifier, fail_on: str | None = None) -> None:
        self.inner = inner
        self.store = inner.store
        self.status = inner.status
        self.single: list[str] = []
        self.batches: list[list[str]] = []
        self.fail_on = fail_on

    def verify(self, token: str) -> Any:
        self.single.append(token)
        if token == self.fail_on:
            raise ValueError("boom")
        return self.inner.verify(token)

    def verify_many(self, tokens: list[str]) -> Any:
        self.batches.append(list(tokens))
        if self.fail_on in tokens:
            raise ValueError("boom")
        return self.inner.verify_many(tokens)


def _gather(coalescer: Coalescer, tokens: list[str]) -> list[Any]:
    async def one(token: str) -> Any:
        return await coalescer.verify(token)

    async def main() -> list[Any]:
        return await asyncio.gather(*(one(t) for t in tokens), return_exceptions=True)

    return asyncio.run(main())


def test_one_loop_turn_is_one_verify_many_call(verifier: Verifier, tokens: Any) -> None:
    rec = _Recording(verifier)
    batch = [tokens.valid, tokens.expired, tokens.unknown_key, "HC1:garbage", tokens.test]
    verdicts = _gather(Coalescer(rec.verify, rec.verify_many), batch)
    assert rec.batches == [batch] and rec.single == []
    assert [v.to_json() for v in verdicts] == [verifier.verify(t).to_json() for t in batch]
    assert [v.status for v in verdicts] == ["valid", "invalid", "invalid", "invalid", "valid"]


def test_a_failing_batch_is_verified_one_by_one(verifier: Verifier, tokens: Any) -> None:
    rec = _Recording(verifier, fail_on="HC1:explodes")
    batch = [tokens.valid, "HC1:explodes", tokens.expired]
    coalescer = Coalescer(rec.verify, rec.verify_many)
    out = _gather(coalescer, batch)
    assert rec.single == batch  # the fallback, after the batch raised
    assert out[0].status == "valid" and out[2].reason.value == "token_expired"
    assert isinstance(out[1], ValueError)  # only the request of the failing token fails
    assert (coalescer.batches, coalescer.tokens) == (1, 3)


def _records(tmp_path: Any) -> tuple[Verifier, str, str]:
    """A verifier with keys and one register record; (verifier, its link, a missing link)."""
    rec = sample_record("vaccination")
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    missing = dict(rec, id="9" + ("1" if rec["id"][1] != "1" else "2") + rec["id"][2:])
    return Verifier.from_files(records=str(path)), record_link(rec), record_link(missing)


def _concurrently(app: Any, sent: list[str], peer: str = "198.51.100.7") -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=(peer, 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await asyncio.gather(
                *(client.post("/v1/verify", json={"token": t}) for t in sent)
            )

    return asyncio.run(main())


def test_concurrent_requests_share_a_batch(tmp_path: Any, demo: Any, tokens: Any) -> None:
    inner, link, missing = _records(tmp_path)
    both = Verifier.from_files(trust=demo.trust_path, records=str(tmp_path / "records.jsonl"))
    del inner
    rec = _Recording(both)
    sent = [tokens.valid, tokens.expired, link, tokens.test, "HC1:garbage", missing] * 4
    answers = _concurrently(create_app(rec, access_log=None), sent)
    assert [r.status_code for r in answers] == [200] * len(sent)
    assert [r.content for r in answers] == [both.verify(t).to_json() for t in sent]
    assert [r.json()["reason"] for r in answers[:6]] == [
        None,
        "token_expired",
        None,
        None,
        answers[4].json()["reason"],
        "not_found",
    ]
    assert sorted(t for b in rec.batches for t in b) == sorted(sent)
    assert len(rec.batches) < len(sent)  # at least two requests verified together
    assert rec.single == []


def test_with_a_limiter_concurrent_guesses_cannot_overdraw_it(tmp_path: Any, tokens: Any) -> None:
    """Register links are gated, looked up and counted in one step when a not_found
    limiter is on: 6 concurrent guesses with 2 answers left get 2 answers and 4 refusals;
    signed tokens are still verified together."""
    from verifier.link_limits import NotFoundLimiter

    links_only, link, missing = _records(tmp_path)
    rec = _Recording(links_only)
    app = create_app(rec, access_log=None, link_limiter=NotFoundLimiter(per_minute=1, burst=2))
    sent = [missing] * 6 + ["HC1:one", "HC1:two"]
    answers = _concurrently(app, sent)
    guesses = answers[:6]
    assert sorted(r.status_code for r in guesses) == [200, 200, 429, 429, 429, 429]
    assert {r.json()["reason"] for r in guesses if r.status_code == 200} == {"not_found"}
    assert {r.json()["error"]["code"] for r in guesses if r.status_code == 429} == {
        "too_many_not_found"
    }
    assert rec.single == [missing] * 2  # the refused ones were never looked up
    assert [t for b in rec.batches for t in b] == ["HC1:one", "HC1:two"]
    assert [r.status_code for r in answers[6:]] == [200, 200]
    # another client is not affected, and a known link is answered
    assert _concurrently(app, [link], peer="203.0.113.9")[0].json()["status"] == "valid"


def test_coalescing_off_verifies_one_at_a_time(verifier: Verifier, tokens: Any) -> None:
    rec = _Recording(verifier)
    app = create_app(rec, access_log=None, coalesce=False)

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await asyncio.gather(
                *(client.post("/v1/verify", json={"token": tokens.valid}) for _ in range(4))
            )

    assert [r.json()["status"] for r in asyncio.run(main())] == ["valid"] * 4
    assert rec.batches == [] and rec.single == [tokens.valid] * 4


@pytest.mark.slow
def test_pipelined_connections_get_their_own_verdicts(serve: Any, demo: Any, tokens: Any) -> None:
    """Through a real socket: 12 connections send before any reads, so one event-loop turn
    holds many requests; each connection must get its own token's verdict."""
    server = serve(["--trust", str(demo.trust_path)])
    kinds = [tokens.valid, tokens.expired, tokens.unknown_key, tokens.test]
    sent = [kinds[i % len(kinds)] for i in range(12)]
    fresh = Verifier.from_files(trust=demo.trust_path)
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in sent]
    try:
        for _round in range(3):
            for s, token in zip(socks, sent, strict=True):
                body = json.dumps({"token": token}).encode()
                s.sendall(
                    b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            for s, token in zip(socks, sent, strict=True):
                reply = read_response(s)
                assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
                got = json.loads(reply.partition(b"\r\n\r\n")[2])
                want = json.loads(fresh.verify(token).to_json())
                assert got == want
    finally:
        for s in socks:
            s.close()
    assert server.stop() == 0
