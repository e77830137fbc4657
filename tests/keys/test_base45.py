from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys import base45

RFC9285 = [
    (b"AB", "BB8"),
    (b"Hello!!", "%69 VD92EX0"),
    (b"base-45", "UJCLQE7W581"),
    (b"ietf!", "QED8WEX0"),
    (b"", ""),
    (b"\x00", "00"),
    (b"\xff\xff", "FGW"),
]


@pytest.mark.parametrize(("raw", "text"), RFC9285)
def test_rfc9285_examples(raw: bytes, text: str) -> None:
    assert base45.encode(raw) == text
    assert base45.decode(text) == raw


@pytest.mark.parametrize(
    "bad",
    [
        "GGW",  # 65536: triplet out of range
        ":::",  # 45^3 - 1: out of range
        "GG",  # 736 > 255: pair out of range
        "A",  # dangling single character
        "ABCD",  # 3n + 1 characters
        "bb8",  # lower case is not in the alphabet
        "BB#",
        "BB8\n",
        "ÄB8",
    ],
)
def test_decode_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        base45.decode(bad)


@given(st.binary(max_size=300))
def test_round_trip(data: bytes) -> None:
    text = base45.encode(data)
    assert set(text) <= set(base45.ALPHABET)
    assert len(text) == (len(data) // 2) * 3 + (len(data) % 2) * 2
    assert base45.decode(text) == data
