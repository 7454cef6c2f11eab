"""Recursive-descent parsing shared by all expression grammars: cursor, errors, paths, operands.

Owns: the token cursor, DynamoDB-style syntax errors, the empty / too-long expression checks,
document paths (``a.#b[2].c``) with placeholder substitution and the reserved-word rule,
operands (paths, ``:values``, function calls, parenthesised operands) and the path
overlap/conflict rule used by updates and projections.
May import: stdlib, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.attributes`,
:mod:`dynamokv.api.reserved` and the sibling modules tokens, nodes, context.
"""

from __future__ import annotations

from collections.abc import Iterable

from dynamokv.api.attributes import NULL
from dynamokv.api.errors import ValidationException, invalid_expression
from dynamokv.api.expressions.context import ExpressionAttributes, Problems
from dynamokv.api.expressions.nodes import (
    FunctionOperand,
    Operand,
    Path,
    PathElement,
    PathOperand,
    ValueOperand,
)
from dynamokv.api.expressions.tokens import Kind, Token, tokenize
from dynamokv.api.reserved import is_reserved

MAX_EXPRESSION_BYTES = 4096
MAX_OPERATORS = 300

CATEGORY_PARENS = "parens"
CATEGORY_UNKNOWN_FUNCTION = "unknown_function"
CATEGORY_MISUSED_FUNCTION = "misused_function"
CATEGORY_RESERVED = "reserved"
CATEGORY_SECTION = "section"
CATEGORY_NAME = "name"
CATEGORY_VALUE = "value"
CATEGORY_OPERAND_COUNT = "operand_count"
CATEGORY_DISTINCT = "distinct"
CATEGORY_FUNCTION = "function"
CATEGORY_OVERLAP = "overlap"
CATEGORY_CONFLICT = "conflict"
CATEGORY_OPERAND_TYPE = "operand_type"
# A document path past DynamoDB's limits: list index beyond 32 bits, more than 32 levels.
CATEGORY_PATH_LIMIT = "path_limit"
MAX_LIST_INDEX = 2**31 - 1
MAX_PATH_DEPTH = 32

REDUNDANT_PARENS = "The expression has redundant parentheses;"


def check_expression_text(label: str, text: str) -> None:
    """The checks DynamoDB makes before parsing: non-empty, at most 4 KB of UTF-8."""
    if not isinstance(text, str):
        raise ValidationException(f"Invalid {label}: The expression must be a string")
    if not text.strip():
        raise invalid_expression(label, "The expression can not be empty;")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_EXPRESSION_BYTES:
        message = "Expression size has exceeded the maximum allowed size;"
        # Only condition-style expressions report the size (a quirk of the service).
        if label in ("ConditionExpression", "FilterExpression"):
            message += f" expression size: {size}"
        raise invalid_expression(label, message)


class BaseParser:
    """Cursor over one expression's tokens plus the grammar pieces every expression shares."""

    # Bare names that are grammar keywords of this expression type and so cannot name a path.
    keywords: frozenset[str] = frozenset()
    # Categories undefined #names / :values are recorded under (conditions use a single one).
    name_category = CATEGORY_NAME
    value_category = CATEGORY_VALUE

    def __init__(self, text: str, label: str, attributes: ExpressionAttributes) -> None:
        check_expression_text(label, text)
        self.text = text
        self.label = label
        self.attributes = attributes
        self.tokens = tokenize(text)
        self.pos = 0
        self.problems = Problems(label)
        self.operators = 0

    # ----------------------------------------------------------------- cursor

    def peek(self, offset: int = 0) -> Token:
        index = min(self.pos + offset, len(self.tokens) - 1)
        return self.tokens[index]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind is not Kind.EOF:
            self.pos += 1
        return token

    def at_punct(self, text: str) -> bool:
        return self.peek().is_punct(text)

    def at_keyword(self, word: str) -> bool:
        return self.peek().is_keyword(word)

    def expect_punct(self, text: str) -> Token:
        if not self.at_punct(text):
            raise self.syntax_error()
        return self.advance()

    def expect_keyword(self, word: str) -> Token:
        if not self.at_keyword(word):
            raise self.syntax_error()
        return self.advance()

    def expect_end(self) -> None:
        if self.peek().kind is not Kind.EOF:
            raise self.syntax_error()

    def syntax_error(self, index: int | None = None) -> ValidationException:
        """DynamoDB's message: the offending token and the source around it.

        ``near`` is the source text from the previous token to the next one (inclusive), so
        ``ADD hits : incr`` reports ``token: ":", near: "hits : incr"``; at the end of input it
        is the last token.
        """
        i = self.pos if index is None else index
        token = self.tokens[i]
        previous = self.tokens[i - 1] if i > 0 else None
        if token.kind is Kind.EOF:
            near = self.text[previous.start : previous.end] if previous else ""
        else:
            following = self.tokens[i + 1]
            start = previous.start if previous else token.start
            end = following.end if following.kind is not Kind.EOF else token.end
            near = self.text[start:end]
        return invalid_expression(
            self.label, f'Syntax error; token: "{token.display}", near: "{near}"'
        )

    # ----------------------------------------------------------------- paths

    def starts_path(self, token: Token) -> bool:
        if token.kind is Kind.ATTR_NAME:
            return True
        return token.kind is Kind.NAME and token.text.upper() not in self.keywords

    def parse_path(self) -> Path:
        elements: list[PathElement] = [self._path_member()]
        while True:
            if self.at_punct("."):
                self.advance()
                elements.append(self._path_member())
            elif self.at_punct("["):
                self.advance()
                token = self.peek()
                if token.kind is not Kind.NUMBER:
                    raise self.syntax_error()
                self.advance()
                if int(token.text) > MAX_LIST_INDEX:
                    self.problems.add(
                        CATEGORY_PATH_LIMIT,
                        f"List index is not within the allowable range; index: [{token.text}]",
                    )
                elements.append(int(token.text))
                self.expect_punct("]")
            else:
                if len(elements) > MAX_PATH_DEPTH:
                    self.problems.add(
                        CATEGORY_PATH_LIMIT,
                        "The document path has too many nesting levels; nesting levels: "
                        f"{len(elements)}",
                    )
                return Path(tuple(elements))

    def _path_member(self) -> str:
        token = self.peek()
        if not self.starts_path(token):
            raise self.syntax_error()
        self.advance()
        if token.kind is Kind.NAME:
            if is_reserved(token.text):
                self.problems.add(
                    CATEGORY_RESERVED,
                    f"Attribute name is a reserved keyword; reserved keyword: {token.text}",
                )
            return token.text
        name = self.attributes.resolve_name(token.text)
        if name is None:
            self.problems.add(
                self.name_category,
                "An expression attribute name used in the document path is not defined; "
                f"attribute name: {token.text}",
            )
            return token.text
        return name

    def parse_value(self) -> ValueOperand:
        token = self.advance()
        assert token.kind is Kind.ATTR_VALUE
        value = self.attributes.resolve_value(token.text)
        if value is None:
            self.problems.add(
                self.value_category,
                "An expression attribute value used in expression is not defined; "
                f"attribute value: {token.text}",
            )
            # A stand-in keeps parsing going; the recorded problem is raised at the end.
            return ValueOperand(token.text, NULL())
        return ValueOperand(token.text, value)

    # ----------------------------------------------------------------- operands

    def parse_operand(self) -> tuple[Operand, bool]:
        """An operand and whether it was written in parentheses.

        Parentheses around an operand are counted in a loop rather than by recursion, so that
        ``((((...(a)...))))`` cannot exhaust the stack; more than one pair is redundant.
        """
        depth = 0
        while self.at_punct("("):
            self.advance()
            depth += 1
        operand = self._bare_operand()
        for _ in range(depth):
            self.expect_punct(")")
        if depth > 1:
            self.problems.add(CATEGORY_PARENS, REDUNDANT_PARENS)
        return operand, depth > 0

    def _bare_operand(self) -> Operand:
        token = self.peek()
        if token.kind is Kind.ATTR_VALUE:
            return self.parse_value()
        if token.kind is Kind.NAME and self.peek(1).is_punct("("):
            return self.parse_function_call()
        if self.starts_path(token):
            return PathOperand(self.parse_path())
        raise self.syntax_error()

    def count_operator(self) -> None:
        """DynamoDB allows at most 300 operators and functions in one expression.

        Counting as we go (rather than after parsing) also bounds how deep function calls
        can nest, and so how deep this parser recurses.
        """
        self.operators += 1
        if self.operators > MAX_OPERATORS:
            raise invalid_expression(
                self.label,
                f"The expression contains too many operators; operator count: {self.operators}",
            )

    def parse_function_call(self) -> FunctionOperand:
        name_token = self.advance()
        self.count_operator()
        self.expect_punct("(")
        args: list[Operand] = [self.parse_operand()[0]]
        while self.at_punct(","):
            self.advance()
            args.append(self.parse_operand()[0])
        self.expect_punct(")")
        function = FunctionOperand(name_token.text, tuple(args))
        self.check_function(function)
        return function

    def check_function(self, function: FunctionOperand) -> None:
        """Validate a function call's name and arguments; subclasses know their functions."""
        raise NotImplementedError


def paths_relation(one: Path, two: Path) -> str | None:
    """``"overlap"`` if one path is a prefix of the other, ``"conflict"`` if they use the same
    prefix once as a map and once as a list, else ``None``."""
    for a, b in zip(one.elements, two.elements, strict=False):
        if isinstance(a, int) != isinstance(b, int):
            return "conflict"
        if a != b:
            return None
    return "overlap"


def check_path_overlaps(paths: Iterable[Path], problems: Problems) -> None:
    seen: list[Path] = []
    for path in paths:
        for earlier in seen:
            relation = paths_relation(earlier, path)
            if relation == "overlap":
                problems.add(
                    CATEGORY_OVERLAP,
                    "Two document paths overlap with each other; must remove or rewrite one of "
                    f"these paths; path one: {earlier}, path two: {path}",
                )
            elif relation == "conflict":
                problems.add(
                    CATEGORY_CONFLICT,
                    "Two document paths conflict with each other; must remove or rewrite one of "
                    f"these paths; path one: {earlier}, path two: {path}",
                )
        seen.append(path)
