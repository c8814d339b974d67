"""YAML from the files being audited (model cards, configs, deployment manifests): safe and bounded.

yaml.safe_load builds alias references in linear time, but a "billion laughs" document expands to
billions of nodes for anyone who walks it. Aliases are legitimate (compose files merge anchors), so
the expanded size is measured after composing and before constructing; over the limit is an error.
"""
from __future__ import annotations

from typing import Any

import yaml

MAX_EXPANDED_NODES = 1_000_000


class _Loader(yaml.SafeLoader):   # the pure-Python composer: libyaml's would skip the check below
    def compose_document(self) -> Any:
        node = super().compose_document()
        _check_expansion(node)
        return node


def _check_expansion(root: yaml.Node) -> None:
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_nodes:     # a recursive alias: any walker of the result would never end
            raise yaml.YAMLError("recursive alias (a node contains itself); not read")
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        if total > MAX_EXPANDED_NODES:
            raise yaml.YAMLError(f"document expands to more than {MAX_EXPANDED_NODES} nodes through "
                                 "aliases (an alias-expansion bomb); not read")
        open_nodes.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root)


def load(text: str) -> Any:
    """Like yaml.safe_load; raises yaml.YAMLError (or RecursionError for absurd nesting)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def load_all(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=_Loader))  # noqa: S506
