"""Kubernetes YAML with line numbers: each document as plain data plus where every key sits.

Real format: YAML 1.1 as PyYAML's safe loader reads it (what ``kubectl`` accepts, JSON
included), one or more documents per file, ``kind: List`` flattened into its items. Built on
PyYAML's composer, which keeps a start mark on every node: the documents are constructed here
from the node tree so that each mapping key and sequence item keeps its line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sim.config.findings import ExplainError

__all__ = ["Doc", "load_yaml"]

Path_ = tuple[Any, ...]


@dataclass
class Doc:
    """One Kubernetes object: its data, the file it came from and the line of every path."""

    file: str
    data: dict[str, Any]
    lines: dict[Path_, int] = field(default_factory=dict)
    prefix: Path_ = ()

    @property
    def kind(self) -> str:
        """``kind`` ("" if missing or not text)."""
        value = self.data.get("kind")
        return value if isinstance(value, str) else ""

    @property
    def api_version(self) -> str:
        """``apiVersion`` ("" if missing)."""
        value = self.data.get("apiVersion")
        return value if isinstance(value, str) else ""

    @property
    def group(self) -> str:
        """The API group of ``apiVersion`` ("" for the core group)."""
        return self.api_version.rpartition("/")[0]

    @property
    def name(self) -> str:
        """``metadata.name`` ("" if missing)."""
        value = self.get("metadata", "name")
        return value if isinstance(value, str) else ""

    @property
    def namespace(self) -> str:
        """``metadata.namespace`` (``default`` if missing, as kubectl applies it)."""
        value = self.get("metadata", "namespace")
        return value if isinstance(value, str) else "default"

    @property
    def label(self) -> str:
        """``Kind namespace/name`` (``Kind name`` without a namespace) for messages."""
        if not self.name:
            return self.kind
        if isinstance(self.get("metadata", "namespace"), str):
            return f"{self.kind} {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"

    def get(self, *path: Any, default: Any = None) -> Any:
        """The value at ``path`` (keys and list indices), or ``default`` if any step is missing."""
        node: Any = self.data
        for step in path:
            in_dict = isinstance(node, dict) and step in node
            in_list = isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
            if in_dict or in_list:
                node = node[step]
            else:
                return default
        return node

    def line(self, *path: Any) -> int:
        """The line of ``path``, or of its longest existing prefix (the document's first line)."""
        full = self.prefix + path
        for end in range(len(full), -1, -1):
            if full[:end] in self.lines:
                return self.lines[full[:end]]
        return 1

    def items(self) -> Iterator[Doc]:
        """The objects of a ``kind: List`` (each a :class:`Doc` sharing this file's lines)."""
        for i, item in enumerate(self.get("items", default=[]) or []):
            if isinstance(item, dict):
                yield Doc(self.file, item, self.lines, (*self.prefix, "items", i))


class _Builder:
    def __init__(self) -> None:
        self.loader = yaml.SafeLoader("")

    def build(self, node: Node, path: Path_, lines: dict[Path_, int]) -> Any:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, MappingNode):
            self.loader.flatten_mapping(node)  # YAML merge keys (<<)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool) and key is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, "a mapping key must be a plain value", key_node.start_mark
                    )
                lines[(*path, key)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, (*path, key), lines)
            return out
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), lines) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self.loader.construct_object(node, deep=True)


def load_yaml(text: str, file: str) -> tuple[list[Doc], list[tuple[int, str]]]:
    """Parse every document of ``text``.

    Returns the Kubernetes objects (``kind: List`` flattened) and, for documents that are not
    objects (no ``kind``), their ``(line, reason)`` so the caller can list them as ignored.

    Raises:
        ExplainError: the text is not YAML (with the line of the problem).
    """
    docs: list[Doc] = []
    skipped: list[tuple[int, str]] = []
    builder = _Builder()
    try:
        for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
            lines: dict[Path_, int] = {}
            data = builder.build(node, (), lines)
            first = node.start_mark.line + 1
            if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
                skipped.append((first, "a YAML document without `kind`: not a Kubernetes object"))
                continue
            doc = Doc(file, data, lines)
            if doc.kind == "List" or (doc.kind.endswith("List") and "items" in data):
                docs.extend(doc.items())
            else:
                docs.append(doc)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ExplainError(file, line, f"not valid YAML: {problem}") from None
    return docs, skipped
