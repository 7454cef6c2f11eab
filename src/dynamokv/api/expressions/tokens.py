"""The tokenizer shared by every expression grammar.

Owns: turning expression text into :class:`Token` objects with their source positions, so the
parsers can report DynamoDB-style syntax errors (``token: "x", near: "a x b"``).
May import: stdlib only.

The tokenizer never fails: a character that starts no token becomes an ``INVALID`` token, which
the parser then reports as a syntax error at exactly that character.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    NAME = "name"  # bare attribute name, keyword or function name: [A-Za-z][A-Za-z0-9_]*
    ATTR_NAME = "attr_name"  # expression attribute name placeholder: #[A-Za-z0-9_]+
    ATTR_VALUE = "attr_value"  # expression attribute value placeholder: :[A-Za-z0-9_]+
    NUMBER = "number"  # digits; only meaningful as a list index
    PUNCT = "punct"  # ( ) [ ] , . = <> < <= > >= + -
    INVALID = "invalid"  # a character no token starts with
    EOF = "eof"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    start: int
    end: int

    def is_punct(self, text: str) -> bool:
        return self.kind is Kind.PUNCT and self.text == text

    def is_keyword(self, word: str) -> bool:
        """Keywords (AND, SET, BETWEEN, ...) are bare names compared case-insensitively."""
        return self.kind is Kind.NAME and self.text.upper() == word

    @property
    def display(self) -> str:
        return "<EOF>" if self.kind is Kind.EOF else self.text


_WHITESPACE = frozenset(" \t\r\n")
# A bare name starts with a letter: DynamoDB's lexer does not take "_123" as a name, so its
# "_" is a syntax error (a placeholder may still start with "_" or a digit after its sigil).
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
_NAME_PART = _NAME_START | _DIGITS | {"_"}
_TWO_CHAR = frozenset({"<=", ">=", "<>"})
_ONE_CHAR = frozenset("()[],.=<>+-")


def tokenize(text: str) -> list[Token]:
    """All tokens of ``text``, ending with one EOF token."""
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in _WHITESPACE:
            i += 1
            continue
        start = i
        if c in _NAME_START:
            i = _scan(text, i + 1, _NAME_PART)
            tokens.append(Token(Kind.NAME, text[start:i], start, i))
        elif c in _DIGITS:
            i = _scan(text, i + 1, _DIGITS)
            tokens.append(Token(Kind.NUMBER, text[start:i], start, i))
        elif c in "#:":
            # A placeholder needs at least one character after the sigil; a bare '#' or ':' is
            # itself the offending token (DynamoDB reports token: ":" for "ADD hits : incr").
            i = _scan(text, i + 1, _NAME_PART)
            if i == start + 1:
                tokens.append(Token(Kind.INVALID, c, start, i))
            else:
                kind = Kind.ATTR_NAME if c == "#" else Kind.ATTR_VALUE
                tokens.append(Token(kind, text[start:i], start, i))
        elif text[i : i + 2] in _TWO_CHAR:
            i += 2
            tokens.append(Token(Kind.PUNCT, text[start:i], start, i))
        elif c in _ONE_CHAR:
            i += 1
            tokens.append(Token(Kind.PUNCT, c, start, i))
        else:
            i += 1
            tokens.append(Token(Kind.INVALID, c, start, i))
    tokens.append(Token(Kind.EOF, "", n, n))
    return tokens


def _scan(text: str, i: int, allowed: frozenset[str]) -> int:
    n = len(text)
    while i < n and text[i] in allowed:
        i += 1
    return i
