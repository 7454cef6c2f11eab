"""The grammar of ConditionExpression, FilterExpression and (as a first pass) KeyCondition.

Owns: parsing ``operand comparator operand``, ``BETWEEN``, ``IN``, the functions
attribute_exists / attribute_not_exists / attribute_type / begins_with / contains / size,
``NOT`` > ``AND`` > ``OR`` precedence and parentheses, plus the semantic checks DynamoDB makes
while parsing (redundant parentheses, unknown or misused functions, operand counts and types,
BETWEEN bounds, distinct operands), reported in DynamoDB's order of precedence.
May import: stdlib, :mod:`dynamokv.api.attributes` and the sibling modules.

Grammar (case-insensitive keywords)::

    condition  := and_cond (OR and_cond)*
    and_cond   := not_cond (AND not_cond)*
    not_cond   := NOT not_cond | primary
    primary    := '(' condition ')'
                | operand comparator operand
                | operand BETWEEN operand AND operand
                | operand IN '(' operand (',' operand)* ')'
                | function '(' operand (',' operand)* ')'
    operand    := '(' operand ')' | :value | size '(' operand ')' | path
"""

from __future__ import annotations

from dynamokv.api.attributes import S, compare_values, to_wire
from dynamokv.api.expressions.context import ExpressionAttributes
from dynamokv.api.expressions.nodes import (
    And,
    Between,
    Comparison,
    Condition,
    FunctionCondition,
    FunctionOperand,
    In,
    Not,
    Operand,
    Or,
    PathOperand,
    ValueOperand,
)
from dynamokv.api.expressions.parser import (
    CATEGORY_DISTINCT,
    CATEGORY_FUNCTION,
    CATEGORY_MISUSED_FUNCTION,
    CATEGORY_OPERAND_COUNT,
    CATEGORY_PARENS,
    CATEGORY_RESERVED,
    CATEGORY_UNKNOWN_FUNCTION,
    REDUNDANT_PARENS,
    BaseParser,
)
from dynamokv.api.expressions.tokens import Kind, Token

COMPARATORS = frozenset({"=", "<>", "<", "<=", ">", ">="})
ORDERING_COMPARATORS = frozenset({"<", "<=", ">", ">="})
CONDITION_FUNCTIONS = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
    "size": 1,
}
UPDATE_ONLY_FUNCTIONS = frozenset({"if_not_exists", "list_append"})
ATTRIBUTE_TYPE_NAMES = ("S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M")
MAX_IN_OPERANDS = 100
_UNDEFINED = "undefined"
# The order in which DynamoDB reports problems found in one condition expression.
CONDITION_ORDER = (
    CATEGORY_PARENS,
    CATEGORY_UNKNOWN_FUNCTION,
    CATEGORY_MISUSED_FUNCTION,
    CATEGORY_RESERVED,
    _UNDEFINED,
    CATEGORY_OPERAND_COUNT,
    CATEGORY_DISTINCT,
    CATEGORY_FUNCTION,
)
# Of those, the ones DynamoDB reports in reading order (operand by operand, each operator or
# function after its operands) rather than by category.
CONDITION_IN_READING_ORDER = (
    _UNDEFINED, CATEGORY_OPERAND_COUNT, CATEGORY_DISTINCT, CATEGORY_FUNCTION,
)


def static_type(operand: Operand) -> str | None:
    """The type an operand is known to have before seeing any item, if any."""
    if isinstance(operand, ValueOperand):
        return operand.value.type_name
    if isinstance(operand, FunctionOperand) and operand.name == "size":
        return "N"
    return None


def _wire_text(operand: ValueOperand) -> str:
    # DynamoDB renders a literal in messages as "AttributeValue: {N:5}".
    wire = to_wire(operand.value)
    kind, raw = next(iter(wire.items()))
    return f"AttributeValue: {{{kind}:{raw}}}"


class ConditionParser(BaseParser):
    keywords = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN"})
    name_category = _UNDEFINED
    value_category = _UNDEFINED

    def __init__(self, text: str, label: str, attributes: ExpressionAttributes) -> None:
        super().__init__(text, label, attributes)
        # Index of each '(' -> index of its ')', computed once so that deciding what a '('
        # opens costs O(1) however deeply parentheses nest.
        self._matching: dict[int, int] = {}
        stack: list[int] = []
        for index, token in enumerate(self.tokens):
            if token.is_punct("("):
                stack.append(index)
            elif token.is_punct(")") and stack:
                self._matching[stack.pop()] = index

    def parse(self) -> Condition:
        condition = self._condition()
        self.expect_end()
        self.problems.raise_first(CONDITION_ORDER, CONDITION_IN_READING_ORDER)
        return condition

    # ----------------------------------------------------------------- boolean structure
    #
    # AND / OR / NOT and grouping parentheses are parsed with an explicit operator stack
    # (shunting-yard) instead of recursion, so nesting depth costs no Python stack; only the
    # comparisons and functions at the leaves are parsed by recursive descent.

    def _condition(self) -> Condition:
        operators: list[str] = []  # "(", "NOT", "AND", "OR"
        operands: list[tuple[Condition, bool]] = []  # (condition, is a parenthesised group)
        open_groups = 0
        while True:
            while True:  # prefixes of the next unit
                if self.at_keyword("NOT"):
                    self.advance()
                    self.count_operator()
                    operators.append("NOT")
                elif self.at_punct("(") and not self._parenthesised_operand_follows():
                    self.advance()
                    operators.append("(")
                    open_groups += 1
                else:
                    break
            operands.append((self._simple_condition(), False))
            self._apply_nots(operators, operands)
            while open_groups and self.at_punct(")"):
                self.advance()
                open_groups -= 1
                self._reduce(operators, operands, ("AND", "OR"))
                operators.pop()  # the "("
                inner, inner_grouped = operands.pop()
                if inner_grouped:
                    self.problems.add(CATEGORY_PARENS, REDUNDANT_PARENS)
                operands.append((inner, True))
                self._apply_nots(operators, operands)
            if self.at_keyword("AND"):
                self.advance()
                self.count_operator()
                self._reduce(operators, operands, ("AND",))
                operators.append("AND")
            elif self.at_keyword("OR"):
                self.advance()
                self.count_operator()
                self._reduce(operators, operands, ("AND", "OR"))
                operators.append("OR")
            else:
                break
        if open_groups:
            raise self.syntax_error()
        self._reduce(operators, operands, ("AND", "OR"))
        assert len(operands) == 1 and not operators
        return operands[0][0]

    @staticmethod
    def _apply_nots(operators: list[str], operands: list[tuple[Condition, bool]]) -> None:
        # NOT binds tighter than AND and OR: it applies as soon as its operand is complete.
        while operators and operators[-1] == "NOT":
            operators.pop()
            condition, _ = operands.pop()
            operands.append((Not(condition), False))

    @staticmethod
    def _reduce(
        operators: list[str], operands: list[tuple[Condition, bool]], which: tuple[str, ...]
    ) -> None:
        """Combine pending binary operators in ``which`` (left-associative)."""
        while operators and operators[-1] in which:
            op = operators.pop()
            right, _ = operands.pop()
            left, _ = operands.pop()
            operands.append((And(left, right) if op == "AND" else Or(left, right), False))

    def _simple_condition(self) -> Condition:
        """A comparison, BETWEEN, IN, or a function used as a condition."""
        operand_start = self.pos
        left, _ = self.parse_operand()
        token = self.peek()
        if token.kind is Kind.PUNCT and token.text in COMPARATORS:
            self.advance()
            self.count_operator()
            right, _ = self.parse_operand()
            return self._comparison(token.text, left, right)
        if token.is_keyword("BETWEEN"):
            self.advance()
            self.count_operator()
            low, _ = self.parse_operand()
            self.expect_keyword("AND")
            high, _ = self.parse_operand()
            return self._between(left, low, high)
        if token.is_keyword("IN"):
            self.advance()
            self.count_operator()
            return self._in(left)
        if isinstance(left, FunctionOperand) and self.tokens[operand_start].kind is Kind.NAME:
            if left.name == "size":
                self._misused(left, allow_size=False)
            return FunctionCondition(left.name, left.args)
        raise self.syntax_error()

    def _parenthesised_operand_follows(self) -> bool:
        """At '(': is this ``(operand) <comparator> ...`` rather than ``(condition)``?"""
        closing = self._matching.get(self.pos)
        if closing is None:
            return False
        return self._starts_comparison_tail(self.tokens[closing + 1])

    @staticmethod
    def _starts_comparison_tail(token: Token) -> bool:
        return (token.kind is Kind.PUNCT and token.text in COMPARATORS) or (
            token.is_keyword("BETWEEN") or token.is_keyword("IN")
        )

    # ----------------------------------------------------------------- condition forms

    def _comparison(self, op: str, left: Operand, right: Operand) -> Comparison:
        self._misused(left, right)
        self._distinct(op, left, right)
        if op in ORDERING_COMPARATORS:
            for operand in (left, right):
                kind = static_type(operand)
                if kind is not None and kind not in ("S", "N", "B"):
                    self._incorrect_type(op, kind)
        return Comparison(op, left, right)

    def _between(self, operand: Operand, low: Operand, high: Operand) -> Between:
        self._misused(operand, low, high)
        unordered = False
        for bound in (operand, low, high):
            kind = static_type(bound)
            if kind is not None and kind not in ("S", "N", "B"):
                self._incorrect_type("BETWEEN", kind)
                unordered = True
        if not unordered and isinstance(low, ValueOperand) and isinstance(high, ValueOperand):
            bounds = (
                f"lower bound operand: {_wire_text(low)}, upper bound operand: {_wire_text(high)}"
            )
            if low.value.type_name != high.value.type_name:
                self.problems.add(
                    CATEGORY_FUNCTION,
                    "The BETWEEN operator requires same data type for lower and upper bounds; "
                    + bounds,
                )
            elif low.value.type_name not in ("S", "N", "B"):
                # Same type, but not one BETWEEN can order (a BOOL, NULL, set, list or map).
                self._incorrect_type("BETWEEN", low.value.type_name)
            elif (compare_values(low.value, high.value) or 0) > 0:
                self.problems.add(
                    CATEGORY_FUNCTION,
                    "The BETWEEN operator requires upper bound to be greater than or equal to "
                    "lower bound; " + bounds,
                )
        return Between(operand, low, high)

    def _in(self, operand: Operand) -> In:
        self.expect_punct("(")
        candidates = [self.parse_operand()[0]]
        while self.at_punct(","):
            self.advance()
            candidates.append(self.parse_operand()[0])
        self.expect_punct(")")
        self._misused(operand, *candidates)
        if len(candidates) > MAX_IN_OPERANDS:
            self.problems.add(
                CATEGORY_OPERAND_COUNT,
                "The IN operator is provided with too many operands; "
                f"number of operands: {len(candidates)}",
            )
        return In(operand, tuple(candidates))

    # ----------------------------------------------------------------- checks

    def _misused(self, *operands: Operand, allow_size: bool = True) -> None:
        """Only size() may be used as an operand; no function may stand where it does not fit."""
        for operand in operands:
            if isinstance(operand, FunctionOperand) and (operand.name != "size" or not allow_size):
                self.problems.add(
                    CATEGORY_MISUSED_FUNCTION,
                    "The function is not allowed to be used this way in an expression; "
                    f"function: {operand.name}",
                )

    def _distinct(self, operator: str, first: Operand, second: Operand) -> None:
        if (
            isinstance(first, PathOperand)
            and isinstance(second, PathOperand)
            and first.path == second.path
        ):
            self.problems.add(
                CATEGORY_DISTINCT,
                "The first operand must be distinct from the remaining operands for this "
                f"operator or function; operator: {operator}, first operand: {first.path}",
            )

    def _incorrect_type(self, function: str, kind: str) -> None:
        self.problems.add(
            CATEGORY_FUNCTION,
            "Incorrect operand type for operator or function; "
            f"operator or function: {function}, operand type: {kind}",
        )

    def check_function(self, function: FunctionOperand) -> None:
        name, args = function.name, function.args
        arity = CONDITION_FUNCTIONS.get(name)
        if name in UPDATE_ONLY_FUNCTIONS:
            # DynamoDB knows these names (UpdateExpression's), so they are not "invalid" here.
            self.problems.add(
                CATEGORY_UNKNOWN_FUNCTION,
                f"The function is not allowed in a condition expression; function: {name}",
            )
            return
        if arity is None:
            self.problems.add(CATEGORY_UNKNOWN_FUNCTION, f"Invalid function name; function: {name}")
            return
        self._misused(*args)
        if len(args) != arity:
            self.problems.add(
                CATEGORY_OPERAND_COUNT,
                "Incorrect number of operands for operator or function; "
                f"operator or function: {name}, number of operands: {len(args)}",
            )
            return
        if arity == 2:
            self._distinct(name, args[0], args[1])
        if name in ("attribute_exists", "attribute_not_exists"):
            if not isinstance(args[0], PathOperand):
                self.problems.add(
                    CATEGORY_FUNCTION,
                    f"Operator or function requires a document path; operator or function: {name}",
                )
        elif name == "begins_with":
            for arg in args:
                kind = static_type(arg)
                if kind is not None and kind not in ("S", "B"):
                    self._incorrect_type(name, kind)
        elif name == "attribute_type":
            type_arg = args[1]
            kind = static_type(type_arg)
            if kind != "S":
                self._incorrect_type(name, kind or "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}")
            elif (
                isinstance(type_arg, ValueOperand)
                and isinstance(type_arg.value, S)
                and type_arg.value.value not in ATTRIBUTE_TYPE_NAMES
            ):
                self.problems.add(
                    CATEGORY_FUNCTION,
                    f"Invalid attribute type name found; type: {type_arg.value.value}, "
                    "valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
                )
        elif name == "size":
            kind = static_type(args[0])
            if kind in ("N", "BOOL", "NULL"):
                self._incorrect_type(name, kind)


def parse_condition_tree(text: str, label: str, attributes: ExpressionAttributes) -> Condition:
    return ConditionParser(text, label, attributes).parse()
