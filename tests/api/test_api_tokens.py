"""The expression tokenizer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dynamokv.api.expressions.tokens import Kind, tokenize


def kinds(text: str) -> list[tuple[Kind, str]]:
    return [(t.kind, t.text) for t in tokenize(text)]


def test_tokens_and_positions() -> None:
    tokens = tokenize("a.#b[12] <= :v")
    assert [(t.kind, t.text) for t in tokens] == [
        (Kind.NAME, "a"),
        (Kind.PUNCT, "."),
        (Kind.ATTR_NAME, "#b"),
        (Kind.PUNCT, "["),
        (Kind.NUMBER, "12"),
        (Kind.PUNCT, "]"),
        (Kind.PUNCT, "<="),
        (Kind.ATTR_VALUE, ":v"),
        (Kind.EOF, ""),
    ]
    assert (tokens[6].start, tokens[6].end) == (9, 11)


def test_two_char_operators_and_invalid_characters() -> None:
    assert kinds("a<>b") == [
        (Kind.NAME, "a"),
        (Kind.PUNCT, "<>"),
        (Kind.NAME, "b"),
        (Kind.EOF, ""),
    ]
    assert kinds("a != b")[1] == (Kind.INVALID, "!")
    assert kinds("a == b")[1:3] == [(Kind.PUNCT, "="), (Kind.PUNCT, "=")]
    assert kinds("ADD hits : incr")[2] == (Kind.INVALID, ":")
    assert kinds("#")[0] == (Kind.INVALID, "#")
    assert kinds("é")[0] == (Kind.INVALID, "é")


def test_keywords_are_names_compared_case_insensitively() -> None:
    token = tokenize("aNd")[0]
    assert token.kind is Kind.NAME and token.is_keyword("AND")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_tokens_cover_all_non_space_text(text: str) -> None:
    tokens = tokenize(text)
    assert tokens[-1].kind is Kind.EOF
    rebuilt = "".join(text[t.start : t.end] for t in tokens)
    assert rebuilt == "".join(c for c in text if c not in " \t\r\n")


def test_bare_names_start_with_a_letter_placeholders_need_not() -> None:
    assert kinds("_123") == [(Kind.INVALID, "_"), (Kind.NUMBER, "123"), (Kind.EOF, "")]
    assert kinds("a_1 #_ :1") == [
        (Kind.NAME, "a_1"), (Kind.ATTR_NAME, "#_"), (Kind.ATTR_VALUE, ":1"), (Kind.EOF, "")]
