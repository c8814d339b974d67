"""YAML from the files being audited (model cards, configs, deployment manifests): safe and bounded.

yaml.safe_load builds alias references in linear time, but a "billion laughs" document expands to
billions of nodes for anyone who walks it. Aliases are legitimate (compose files merge anchors), so
the expanded size is measured after composing and before constructing; over the limit is an error.

Every problem is a `YamlError` (a ValueError), so callers need not import PyYAML; this module imports it
on first use only (~12 ms of start-up that a repo without YAML does not pay).
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

MAX_EXPANDED_NODES = 1_000_000
PYTHON_TAG = "tag:yaml.org,2002:python/"


class YamlError(ValueError):
    """A YAML text that cannot be read: PyYAML's error (its message, the cause kept), or the expansion bound."""


def load(text: str) -> Any:
    """Like yaml.safe_load; raises YamlError (or RecursionError for absurd nesting)."""
    yaml, loaders = _yaml()
    with _errors(yaml):
        return yaml.load(text, Loader=loaders.bounded)  # noqa: S506 - a SafeLoader subclass


def load_all(text: str) -> list[Any]:
    yaml, loaders = _yaml()
    with _errors(yaml):
        return list(yaml.load_all(text, Loader=loaders.bounded))  # noqa: S506


def load_all_tags_as_data(text: str) -> list[Any]:
    """Every document, python/* tags constructed as the plain value under them (callers report the tags
    themselves through python_tags)."""
    yaml, loaders = _yaml()
    with _errors(yaml):
        return list(yaml.load_all(text, Loader=loaders.tag_blind))  # noqa: S506 - a SafeLoader subclass


def python_tags(text: str) -> list[tuple[int, str]]:
    """(line, tag) of every python/* tag in a YAML text, read from the composed nodes (so %TAG directives
    and %-escapes are resolved the way a loader resolves them). Nothing is constructed."""
    if not may_have_tags(text):
        return []
    yaml, _loaders = _yaml()
    out: list[tuple[int, str]] = []
    seen: set[int] = set()
    with _errors(yaml):
        for document in yaml.compose_all(text, Loader=yaml.SafeLoader):
            stack = [document] if document is not None else []
            while stack:
                node = stack.pop()
                if id(node) in seen:
                    continue
                seen.add(id(node))
                if isinstance(node.tag, str) and node.tag.startswith(PYTHON_TAG):
                    out.append((node.start_mark.line + 1, node.tag))
                if isinstance(node, yaml.SequenceNode):
                    stack.extend(node.value)
                elif isinstance(node, yaml.MappingNode):
                    stack.extend(n for pair in node.value for n in pair)
    return out


def may_have_tags(text: str) -> bool:
    """A YAML tag can spell `python` with %-escapes or through a %TAG directive: look for any tag at all."""
    return "!" in text and ("python" in text or "%" in text)


@contextlib.contextmanager
def _errors(yaml: Any) -> Iterator[None]:
    """PyYAML's errors as YamlError."""
    try:
        yield
    except yaml.YAMLError as exc:
        raise YamlError(str(exc)) from exc


@functools.cache
def _yaml() -> tuple[Any, Any]:
    """PyYAML and our two loaders on it: the bounded safe loader, and the same reading python tags as data."""
    import yaml

    class Bounded(yaml.SafeLoader):   # the pure-Python composer: libyaml's would skip the check below
        def compose_document(self) -> Any:
            node = super().compose_document()
            _check_expansion(yaml, node)
            return node

    class TagBlind(Bounded):
        pass

    def plain(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)  # type: ignore[arg-type]

    TagBlind.add_multi_constructor(PYTHON_TAG, plain)
    return yaml, SimpleNamespace(bounded=Bounded, tag_blind=TagBlind)


def _check_expansion(yaml: Any, root: Any) -> None:
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Any) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_nodes:     # a recursive alias: any walker of the result would never end
            raise YamlError("recursive alias (a node contains itself); not read")
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        if total > MAX_EXPANDED_NODES:
            raise YamlError(f"document expands to more than {MAX_EXPANDED_NODES} nodes through "
                            "aliases (an alias-expansion bomb); not read")
        open_nodes.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root)
