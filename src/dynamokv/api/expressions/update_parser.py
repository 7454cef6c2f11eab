"""The grammar of UpdateExpression.

Owns: parsing the SET / REMOVE / ADD / DELETE clauses (each at most once, in any order),
SET values with ``+`` / ``-``, if_not_exists and list_append, and the checks DynamoDB makes at
parse time: duplicate clauses, overlapping or conflicting target paths, operand types of
literals (``SET a = :s + :n`` with a string, ``ADD a :str``), function names and arities.
May import: stdlib and the sibling modules.

Grammar (case-insensitive clause keywords)::

    update     := clause+
    clause     := SET set_action (',' set_action)*
                | REMOVE path (',' path)*
                | ADD path :value (',' path :value)*
                | DELETE path :value (',' path :value)*
    set_action := path '=' set_value
    set_value  := '(' term ')' | term
    term       := operand (('+' | '-') operand)?
    operand    := '(' operand ')' | :value | function '(' operand (',' operand)* ')' | path
"""

from __future__ import annotations

from dynamokv.api.expressions.context import ExpressionAttributes
from dynamokv.api.expressions.nodes import (
    AddAction,
    ArithmeticOperand,
    DeleteAction,
    FunctionOperand,
    Operand,
    Path,
    PathOperand,
    RemoveAction,
    SetAction,
    UpdateExpression,
    ValueOperand,
)
from dynamokv.api.expressions.parser import (
    CATEGORY_CONFLICT,
    CATEGORY_FUNCTION,
    CATEGORY_NAME,
    CATEGORY_OPERAND_TYPE,
    CATEGORY_OVERLAP,
    CATEGORY_PARENS,
    CATEGORY_RESERVED,
    CATEGORY_SECTION,
    CATEGORY_UNKNOWN_FUNCTION,
    CATEGORY_VALUE,
    BaseParser,
    check_path_overlaps,
)
from dynamokv.api.expressions.tokens import Kind

UPDATE_FUNCTIONS = {"if_not_exists": 2, "list_append": 2}
# ConditionExpression's functions: known to DynamoDB, so not "invalid" in an update.
CONDITION_ONLY_FUNCTIONS = frozenset(
    {"attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains",
     "size"}
)
UPDATE_ORDER = (
    CATEGORY_PARENS,
    CATEGORY_RESERVED,
    CATEGORY_UNKNOWN_FUNCTION,
    CATEGORY_SECTION,
    CATEGORY_NAME,
    CATEGORY_VALUE,
    CATEGORY_OVERLAP,
    CATEGORY_CONFLICT,
    CATEGORY_OPERAND_TYPE,
    CATEGORY_FUNCTION,
)
# How ADD / DELETE name a wrongly typed literal in their error message.
_TYPE_WORDS = {
    "S": "STRING",
    "N": "NUMBER",
    "B": "BINARY",
    "NULL": "NULL",
    "BOOL": "BOOLEAN",
    "L": "LIST",
    "M": "MAP",
}


class UpdateParser(BaseParser):
    keywords = frozenset({"SET", "REMOVE", "ADD", "DELETE"})

    def __init__(self, text: str, attributes: ExpressionAttributes) -> None:
        super().__init__(text, "UpdateExpression", attributes)
        self._sets: list[SetAction] = []
        self._removes: list[RemoveAction] = []
        self._adds: list[AddAction] = []
        self._deletes: list[DeleteAction] = []
        self._paths: list[Path] = []

    def parse(self) -> UpdateExpression:
        seen: set[str] = set()
        while True:
            token = self.peek()
            section = token.text.upper() if token.kind is Kind.NAME else ""
            if section not in self.keywords:
                raise self.syntax_error()
            self.advance()
            if section in seen:
                self.problems.add(
                    CATEGORY_SECTION,
                    f'The "{section}" section can only be used once in an update expression;',
                )
            seen.add(section)
            self._action(section)
            while self.at_punct(","):
                self.advance()
                self._action(section)
            if self.peek().kind is Kind.EOF:
                break
        check_path_overlaps(self._paths, self.problems)
        self.problems.raise_first(UPDATE_ORDER)
        return UpdateExpression(
            tuple(self._sets), tuple(self._removes), tuple(self._adds), tuple(self._deletes)
        )

    def _action(self, section: str) -> None:
        path = self.parse_path()
        self._paths.append(path)
        if section == "SET":
            self.expect_punct("=")
            self._sets.append(SetAction(path, self._set_value()))
        elif section == "REMOVE":
            self._removes.append(RemoveAction(path))
        else:
            if self.peek().kind is not Kind.ATTR_VALUE:
                raise self.syntax_error()
            value = self.parse_value()
            kind = value.value.type_name
            if kind in _TYPE_WORDS and not (section == "ADD" and kind == "N"):
                self.problems.add(
                    CATEGORY_OPERAND_TYPE,
                    "Incorrect operand type for operator or function; "
                    f"operator: {section}, operand type: {_TYPE_WORDS[kind]}",
                )
            if section == "ADD":
                self._adds.append(AddAction(path, value))
            else:
                self._deletes.append(DeleteAction(path, value))

    def _set_value(self) -> Operand:
        if self.at_punct("(") and self._parenthesised_arithmetic():
            self.advance()
            value = self._term()
            self.expect_punct(")")
            return value
        return self._term()

    def _parenthesised_arithmetic(self) -> bool:
        """At '(': does a '+' or '-' sit directly inside these parentheses?"""
        depth = 0
        for token in self.tokens[self.pos :]:
            if token.is_punct("("):
                depth += 1
            elif token.is_punct(")"):
                depth -= 1
                if depth == 0:
                    return False
            elif depth == 1 and (token.is_punct("+") or token.is_punct("-")):
                return True
        return False

    def _term(self) -> Operand:
        left, _ = self.parse_operand()
        if self.at_punct("+") or self.at_punct("-"):
            op = self.advance().text
            self.count_operator()
            right, _ = self.parse_operand()
            for operand in (left, right):
                self._literal_type(op, operand, "N")
            return ArithmeticOperand(op, left, right)
        return left

    def _literal_type(self, function: str, operand: Operand, wanted: str) -> None:
        if isinstance(operand, ValueOperand) and operand.value.type_name != wanted:
            self.problems.add(
                CATEGORY_FUNCTION,
                "Incorrect operand type for operator or function; "
                f"operator or function: {function}, operand type: {operand.value.type_name}",
            )

    def check_function(self, function: FunctionOperand) -> None:
        name, args = function.name, function.args
        arity = UPDATE_FUNCTIONS.get(name)
        if arity is None:
            message = (
                f"The function is not allowed in an update expression; function: {name}"
                if name in CONDITION_ONLY_FUNCTIONS
                else f"Invalid function name; function: {name}"
            )
            self.problems.add(CATEGORY_UNKNOWN_FUNCTION, message)
            return
        if len(args) != arity:
            self.problems.add(
                CATEGORY_FUNCTION,
                "Incorrect number of operands for operator or function; "
                f"operator or function: {name}, number of operands: {len(args)}",
            )
            return
        if name == "if_not_exists":
            if not isinstance(args[0], PathOperand):
                self.problems.add(
                    CATEGORY_FUNCTION,
                    f"Operator or function requires a document path; operator or function: {name}",
                )
        else:
            for arg in args:
                self._literal_type(name, arg, "L")
                if isinstance(arg, FunctionOperand) and arg.name == "list_append":
                    # DynamoDB refuses list_append(list_append(...), ...) although it parses.
                    self.problems.add(
                        CATEGORY_FUNCTION,
                        "The function is not allowed to be used this way in an expression; "
                        f"function: {arg.name}",
                    )


def parse_update_tree(text: str, attributes: ExpressionAttributes) -> UpdateExpression:
    return UpdateParser(text, attributes).parse()
