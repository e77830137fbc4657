from __future__ import annotations

import math

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys.cbor import RawCBOR, Tagged, dumps

HAND_CHECKED = [
    (0, "00"),
    (23, "17"),
    (24, "1818"),
    (255, "18ff"),
    (256, "190100"),
    (65535, "19ffff"),
    (65536, "1a00010000"),
    (2**32, "1b0000000100000000"),
    (2**64 - 1, "1bffffffffffffffff"),
    (-1, "20"),
    (-24, "37"),
    (-25, "3818"),
    (-500, "3901f3"),
    (-(2**64), "3bffffffffffffffff"),
    (b"", "40"),
    (b"\x01\x02", "420102"),
    ("", "60"),
    ("a", "6161"),
    ("ü", "62c3bc"),
    ([], "80"),
    ([1, [2, 3]], "8201820203"),
    ((1, 2), "820102"),
    ({}, "a0"),
    ({1: 2, "a": "b"}, "a201026161 6162".replace(" ", "")),
    ({-260: {1: {}}}, "a1390103a101a0"),
    (True, "f5"),
    (False, "f4"),
    (None, "f6"),
    (1.5, "fb3ff8000000000000"),
    (Tagged(18, []), "d280"),
    (Tagged(61, Tagged(18, 0)), "d83dd200"),
    (RawCBOR(b"\xff\x00"), "ff00"),
    ([RawCBOR(b"\x1f")], "811f"),
]


@pytest.mark.parametrize(("obj", "hexed"), HAND_CHECKED)
def test_hand_checked_bytes(obj: object, hexed: str) -> None:
    assert dumps(obj).hex() == hexed


def test_long_lengths() -> None:
    assert dumps(b"x" * 24)[:2] == bytes.fromhex("5818")
    assert dumps("y" * 300)[:3] == bytes.fromhex("79012c")
    assert dumps(list(range(24)))[:2] == bytes.fromhex("9818")


def test_map_keeps_insertion_order() -> None:
    assert dumps({4: 1, 1: 2}).hex() == "a204010102"
    assert dumps({1: 2, 4: 1}).hex() == "a201020401"


@pytest.mark.parametrize("bad", [2**64, -(2**64) - 1])
def test_integer_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError):
        dumps(bad)


@pytest.mark.parametrize("bad", [{(1,): 2}, {b"k": 1}, {True: 1}, object(), {1, 2}])
def test_unsupported_types(bad: object) -> None:
    with pytest.raises(TypeError):
        dumps(bad)


def test_nesting_limit() -> None:
    deep: list[object] = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(ValueError):
        dumps(deep)


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.integers(-1000, 1000) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


@given(json_like)
def test_cbor2_decodes_what_we_encode(obj: object) -> None:
    assert cbor2.loads(dumps(obj)) == obj


@given(st.integers(min_value=-(2**64), max_value=2**64 - 1) | st.text() | st.binary())
def test_same_bytes_as_cbor2_for_scalars(obj: object) -> None:
    assert dumps(obj) == cbor2.dumps(obj)


def test_float_is_always_double() -> None:
    assert dumps(0.0) == b"\xfb" + bytes(8)
    assert math.isinf(cbor2.loads(dumps(math.inf)))


def test_tag_round_trip_with_cbor2() -> None:
    decoded = cbor2.loads(dumps(Tagged(18, [b"\xa1\x01&", {}, b"p", b"s"])))
    assert isinstance(decoded, cbor2.CBORTag)
    assert decoded.tag == 18
    assert decoded.value == [b"\xa1\x01&", {}, b"p", b"s"]
