"""ProjectionExpression: parsing and applying it to an item.

Owns: the projection grammar (``path (',' path)*``), its checks (reserved words, undefined
names, overlapping or conflicting paths) and :func:`project`, which keeps only the requested
paths of an item, nested structure included. Several indexes of one list come back as a
compacted list in index order (``l[2], l[0]`` gives ``[l0, l2]``), as DynamoDB does.
May import: stdlib, :mod:`dynamokv.api.attributes` and the sibling modules.
"""

from __future__ import annotations

from collections.abc import Mapping

from dynamokv.api.attributes import AttributeValue, Item, L, M
from dynamokv.api.expressions.context import ExpressionAttributes
from dynamokv.api.expressions.nodes import Path, PathElement, Projection
from dynamokv.api.expressions.parser import (
    CATEGORY_CONFLICT,
    CATEGORY_NAME,
    CATEGORY_OVERLAP,
    CATEGORY_RESERVED,
    BaseParser,
    check_path_overlaps,
)

PROJECTION_ORDER = (CATEGORY_RESERVED, CATEGORY_NAME, CATEGORY_OVERLAP, CATEGORY_CONFLICT)


class ProjectionParser(BaseParser):
    def __init__(self, text: str, attributes: ExpressionAttributes) -> None:
        super().__init__(text, "ProjectionExpression", attributes)

    def check_function(self, function: object) -> None:  # pragma: no cover - no functions here
        raise AssertionError("projections have no functions")

    def parse(self) -> Projection:
        paths = [self.parse_path()]
        while self.at_punct(","):
            self.advance()
            paths.append(self.parse_path())
        self.expect_end()
        check_path_overlaps(paths, self.problems)
        self.problems.raise_first(PROJECTION_ORDER)
        return Projection(tuple(paths))


def parse_projection_tree(text: str, attributes: ExpressionAttributes) -> Projection:
    return ProjectionParser(text, attributes).parse()


# A trie of the requested paths: None marks "take the whole value here".
_Trie = dict[PathElement, "_Trie | None"]


def _build_trie(paths: tuple[Path, ...]) -> _Trie:
    trie: _Trie = {}
    for path in paths:
        node = trie
        *inner, last = path.elements
        for element in inner:
            child = node.get(element)
            if child is None:
                child = {}
                node[element] = child
            node = child
        node[last] = None
    return trie


def project(item: Mapping[str, AttributeValue], projection: Projection | tuple[Path, ...]) -> Item:
    """The part of ``item`` named by ``projection``; paths that do not resolve are skipped."""
    paths = projection.paths if isinstance(projection, Projection) else projection
    result: Item = {}
    for name, sub in _build_trie(paths).items():
        assert isinstance(name, str)
        value = item.get(name)
        if value is None:
            continue
        picked = value if sub is None else _extract(value, sub)
        if picked is not None:
            result[name] = picked
    return result


def _extract(value: AttributeValue, trie: _Trie) -> AttributeValue | None:
    if isinstance(value, M):
        members: dict[str, AttributeValue] = {}
        for key, sub in trie.items():
            if not isinstance(key, str) or key not in value.value:
                continue
            picked = value.value[key] if sub is None else _extract(value.value[key], sub)
            if picked is not None:
                members[key] = picked
        return M(members) if members else None
    if isinstance(value, L):
        elements: list[AttributeValue] = []
        for index in sorted(k for k in trie if isinstance(k, int)):
            if index >= len(value.value):
                continue
            sub = trie[index]
            picked = value.value[index] if sub is None else _extract(value.value[index], sub)
            if picked is not None:
                elements.append(picked)
        return L(tuple(elements)) if elements else None
    return None
