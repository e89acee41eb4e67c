"""YAML loading that remembers the line of every key, so errors can point at the file.

PyYAML's composer keeps a source mark on every node; walking the node tree gives both the plain
Python value and a map from key path to line number.
"""

from __future__ import annotations

from typing import Any

import yaml

KeyPath = tuple[str | int, ...]


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe loader; duplicate keys are reported instead of silently overwritten."""


def _construct(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], loader: Any) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in result:
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                )
            child = (*path, str(key))
            lines[child] = key_node.start_mark.line + 1
            result[key] = _construct(value_node, child, lines, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, (*path, index), lines, loader) for index, item in enumerate(node.value)
        ]
    try:
        return loader.construct_object(node, deep=True)
    except ValueError:
        # A scalar that looks like a date but is not one (2026-13-01): PyYAML's resolver
        # raises a bare ValueError. Keep the text, so validation names its key and line.
        return node.value


def load_with_lines(text: str) -> tuple[Any, dict[KeyPath, int]]:
    """Parse YAML text; returns the data and the 1-based line of each key path."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[KeyPath, int] = {}
        if node is None:
            return None, lines
        return _construct(node, (), lines, loader), lines
    finally:
        loader.dispose()


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int:
    """The line of the deepest part of `path` that exists in the file (1 when none does)."""
    for end in range(len(path), -1, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return 1
