"""An order-preserving, self-delimiting byte encoding of key values (S, N, B).

Owns: :func:`encode_key` / :func:`decode_key`, such that for two key values ``a`` and ``b`` of
the same type ``encode_key(a) < encode_key(b)`` (bytewise) exactly when ``a < b`` in DynamoDB's
order -- strings by UTF-8 bytes, numbers numerically over the whole range (negative, zero,
1E-130 .. 9.99..E+125), binary bytewise. No encoding is a prefix of another, so
``encode_key(hash) + encode_key(range)`` also sorts correctly and can be split again: an
ordered storage engine can keep a partition's items in sort-key order and range-scan them.
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.numbers`.

Layout (first byte is a type tag; values of different types never share a key column)::

    N   0x10  sign-class  [exponent  digit-pairs...  terminator]
    S   0x20  utf-8 bytes, 0x00 escaped as 00 FF, terminated by 00 00
    B   0x30  raw bytes,   0x00 escaped as 00 FF, terminated by 00 00

Numbers are written as ``0.d1d2d3... x 10^E`` with ``d1 != 0``: sign-class 0x01 (negative),
0x02 (zero, nothing follows) or 0x03 (positive); then ``E + 129`` in one byte (DynamoDB's range
makes that exactly 0..255); then the mantissa digits in base-100 pairs as bytes 1..100 and a
0x00 terminator, so a shorter mantissa sorts first. Negative numbers complement the exponent and
pair bytes (255 - b) and end with 0xFF, which reverses their order as required.
"""

from __future__ import annotations

from decimal import Decimal

from dynamokv.api.attributes import B, KeyValue, N, S
from dynamokv.api.errors import DynamoDBError
from dynamokv.api.numbers import MAX_ADJUSTED_EXPONENT, MIN_ADJUSTED_EXPONENT, check_number

TAG_N = 0x10
TAG_S = 0x20
TAG_B = 0x30

_NEGATIVE, _ZERO, _POSITIVE = 0x01, 0x02, 0x03
# The mantissa exponent E of 0.d1d2.. x 10^E is adjusted() + 1; offset it into 0..255.
_EXPONENT_BIAS = -(MIN_ADJUSTED_EXPONENT + 1)  # == 129
assert MIN_ADJUSTED_EXPONENT + 1 + _EXPONENT_BIAS == 0
assert MAX_ADJUSTED_EXPONENT + 1 + _EXPONENT_BIAS == 255


class KeyDecodeError(ValueError):
    """The bytes are not a valid key encoding."""


def encode_key(value: KeyValue) -> bytes:
    """The order-preserving encoding of one key value."""
    if isinstance(value, N):
        return bytes([TAG_N]) + _encode_number(value.value)
    if isinstance(value, S):
        return bytes([TAG_S]) + _escape(value.value.encode("utf-8"))
    if isinstance(value, B):
        return bytes([TAG_B]) + _escape(value.value)
    raise TypeError(f"not a key value: {value!r}")


def encode_keys(*values: KeyValue) -> bytes:
    """Concatenated encodings (e.g. hash then range key); order is lexicographic per part."""
    return b"".join(encode_key(v) for v in values)


def decode_key(data: bytes) -> KeyValue:
    """Inverse of :func:`encode_key`; the whole of ``data`` must be one encoding."""
    value, end = decode_key_prefix(data, 0)
    if end != len(data):
        raise KeyDecodeError("trailing bytes after key encoding")
    return value


def decode_keys(data: bytes) -> list[KeyValue]:
    """Inverse of :func:`encode_keys`."""
    out: list[KeyValue] = []
    pos = 0
    while pos < len(data):
        value, pos = decode_key_prefix(data, pos)
        out.append(value)
    return out


def decode_key_prefix(data: bytes, pos: int) -> tuple[KeyValue, int]:
    """Decode the encoding starting at ``data[pos]``; return it and the position after it."""
    if pos >= len(data):
        raise KeyDecodeError("empty key encoding")
    tag = data[pos]
    if tag == TAG_N:
        number, end = _decode_number(data, pos + 1)
        return N(number), end
    if tag in (TAG_S, TAG_B):
        raw, end = _unescape(data, pos + 1)
        if tag == TAG_B:
            return B(raw), end
        try:
            return S(raw.decode("utf-8")), end
        except UnicodeDecodeError as exc:
            raise KeyDecodeError("invalid UTF-8 in string key") from exc
    raise KeyDecodeError(f"unknown key type tag 0x{tag:02x}")


# --------------------------------------------------------------------------- strings, binary


def _escape(raw: bytes) -> bytes:
    # 00 -> 00 FF keeps order (00 FF sorts after the 00 00 terminator, i.e. after "end of
    # value"), and makes the first 00 00 the unambiguous end.
    return raw.replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def _unescape(data: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    while True:
        nul = data.find(b"\x00", pos)
        if nul < 0 or nul + 1 >= len(data):
            raise KeyDecodeError("unterminated string/binary key")
        out += data[pos:nul]
        marker = data[nul + 1]
        if marker == 0x00:
            return bytes(out), nul + 2
        if marker != 0xFF:
            raise KeyDecodeError("bad escape in string/binary key")
        out.append(0)
        pos = nul + 2


# --------------------------------------------------------------------------- numbers


def _encode_number(value: Decimal) -> bytes:
    if value.is_zero():
        return bytes([_ZERO])
    sign, digit_tuple, _ = value.as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent = value.adjusted() + 1 + _EXPONENT_BIAS
    if not 0 <= exponent <= 255:
        raise ValueError(f"number out of DynamoDB's range: {value}")
    if len(digits) % 2:
        digits += "0"
    pairs = [int(digits[i : i + 2]) + 1 for i in range(0, len(digits), 2)]
    if sign:
        return bytes([_NEGATIVE, 255 - exponent, *(255 - p for p in pairs), 0xFF])
    return bytes([_POSITIVE, exponent, *pairs, 0x00])


def _decode_number(data: bytes, pos: int) -> tuple[Decimal, int]:
    if pos >= len(data):
        raise KeyDecodeError("truncated number key")
    sign_class = data[pos]
    if sign_class == _ZERO:
        return Decimal(0), pos + 1
    if sign_class not in (_NEGATIVE, _POSITIVE) or pos + 1 >= len(data):
        raise KeyDecodeError("bad number key")
    negative = sign_class == _NEGATIVE
    exponent = data[pos + 1]
    if negative:
        exponent = 255 - exponent
    terminator = 0xFF if negative else 0x00
    digits: list[str] = []
    i = pos + 2
    while True:
        if i >= len(data):
            raise KeyDecodeError("unterminated number key")
        b = data[i]
        i += 1
        if b == terminator:
            break
        pair = (255 - b if negative else b) - 1
        if not 0 <= pair <= 99:
            raise KeyDecodeError("bad digit pair in number key")
        digits.append(f"{pair:02d}")
    mantissa = "".join(digits).rstrip("0")
    if not mantissa:
        raise KeyDecodeError("empty mantissa in number key")
    # 0.mantissa x 10^(exponent - bias)  ==  mantissa x 10^(exponent - bias - len(mantissa))
    power = exponent - _EXPONENT_BIAS - len(mantissa)
    try:
        result = check_number(Decimal(f"{'-' if negative else ''}{mantissa}E{power}"))
    except DynamoDBError as exc:
        raise KeyDecodeError(f"number key out of range: {exc.message}") from exc
    return result, i
