"""Ouvrage keys are untrusted: they become folder names and S3 prefixes."""

from __future__ import annotations

import pytest

from pdfgen_pipeline.ouvrage.keys import InvalidKeyError, validate_ouvrage_key


@pytest.mark.parametrize("key", ["c22", "940", "g4", "in-c2.2_b", "C22", "a", "x" * 64])
def test_valid_keys_are_returned_unchanged(key):
    assert validate_ouvrage_key(key) == key


@pytest.mark.parametrize(
    "key",
    ["../x", "a/b", "a\\b", "a b", "é", "cé22", "x" * 65, "x" * 300, "", ".hidden", "..", ".", "a..b", "c22/..",
     "c22\n", "c\x0022", "c\x1b22", "\tc22", "-c22", "_c22", "c22\u00a0", "c２２"],
    ids=lambda k: repr(k)[:20],
)
def test_invalid_keys_are_refused_with_a_message(key):
    with pytest.raises(InvalidKeyError) as info:
        validate_ouvrage_key(key)
    msg = str(info.value)
    assert msg.startswith("invalid ouvrage key")
    assert "ASCII" in msg and "64" in msg
    assert isinstance(info.value, ValueError)


def test_long_key_is_shortened_in_the_message():
    with pytest.raises(InvalidKeyError) as info:
        validate_ouvrage_key("y" * 300)
    msg = str(info.value)
    assert "y" * 80 in msg and "y" * 81 not in msg
    assert "…" in msg
    assert len(msg) < 300


def test_control_characters_are_escaped_in_the_message():
    with pytest.raises(InvalidKeyError) as info:
        validate_ouvrage_key("a\nb\x1b[31m")
    msg = str(info.value)
    assert "\n" not in msg and "\x1b" not in msg
    assert "\\n" in msg


@pytest.mark.parametrize("key", [None, 22, b"c22", ["c22"]])
def test_non_strings_are_refused(key):
    with pytest.raises(InvalidKeyError):
        validate_ouvrage_key(key)  # type: ignore[arg-type]
