from __future__ import annotations

import hashlib
import io
import math

import pytest

from ita_vc.utils.hashing import (
    canonical_json,
    hash_bytes,
    hash_canonical,
    hash_file,
    hash_stream,
    is_hash,
    parse_hash,
)


def test_canonical_json_sorts_keys_and_drops_whitespace():
    assert canonical_json({"b": 1, "a": [1, 2, {"d": None, "c": True}]}) == (
        '{"a":[1,2,{"c":true,"d":null}],"b":1}'
    )


def test_canonical_json_one_number_format():
    assert canonical_json([2.0, 2, -0.5, 0.1, 1e-7, 1e20, 2.5e300]) == (
        "[2,2,-0.5,0.1,1e-07,1e+20,2.5e+300]"
    )
    # integral floats beyond 2**53 keep their float form (not exactly representable as ints)
    assert canonical_json(2.0**52) == str(2**52)
    assert canonical_json(2.0**60) == repr(2.0**60)


def test_canonical_json_unicode_is_utf8_not_escaped():
    assert canonical_json({"名": 'é\n"'}) == '{"名":"é\\n\\""}'


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_canonical_json_refuses_non_finite(bad):
    with pytest.raises(ValueError, match="non-finite"):
        canonical_json({"x": bad})


def test_canonical_json_refuses_non_string_keys_and_unknown_types():
    with pytest.raises(TypeError, match="string keys"):
        canonical_json({1: "a"})
    with pytest.raises(TypeError, match="cannot encode set"):
        canonical_json({"a": {1, 2}})


def test_canonical_json_tuple_is_list_and_bools_are_not_ints():
    assert canonical_json((1, True, False)) == "[1,true,false]"


def test_hash_helpers_agree():
    payload = b"hello"
    expected = "sha256:" + hashlib.sha256(payload).hexdigest()
    assert hash_bytes(payload) == expected
    assert hash_stream(io.BytesIO(payload)) == (expected, 5)
    assert hash_canonical({"b": 1, "a": 2}) == hash_bytes(b'{"a":2,"b":1}')
    assert is_hash(expected)
    assert parse_hash(expected) == hashlib.sha256(payload).hexdigest()


def test_hash_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * (3 << 20))
    assert hash_file(path) == (hash_bytes(b"x" * (3 << 20)), 3 << 20)


@pytest.mark.parametrize("bad", ["sha256:ABC", "md5:" + "0" * 32, "sha256:" + "A" * 64, 5])
def test_is_hash_rejects_malformed(bad):
    assert not is_hash(bad)
    if isinstance(bad, str):
        with pytest.raises(ValueError, match="not a sha256 hash"):
            parse_hash(bad)
