"""Write calibrated settings into an installer's config file without losing a byte of the rest.

A config on a device is a document: installers leave comments on why a zone is where it is,
ops keep keys in the order of the site survey. Dumping the whole file again with a YAML library
would erase all of that, so each change here replaces only the text of the one entry it sets
(or inserts that entry at the end of its mapping when it is missing), found through the source
marks PyYAML keeps on every node. The result must then (1) parse back to exactly the data
intended, and (2) pass the same validation as `sensekit check-config`; only then is it written,
atomically, so a device never boots with a half-written config.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sensekit.config import parse_config
from sensekit.errors import ConfigError
from sensekit.yaml_lines import KeyPath


def _plain(value: Any) -> Any:
    """Tuples, paths and enums as plain YAML types (the safe dumper knows only the plain ones)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return str(value)  # a StrEnum becomes its text
    return value


def _content_end(node: yaml.Node) -> int:
    """End of a node's own text: block collections end at their last leaf, not at the next key
    (PyYAML's end mark for them lies after any blank lines and comments that follow)."""
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and not node.flow_style:
        if not node.value:
            return int(node.end_mark.index)
        last = node.value[-1]
        return _content_end(last[1] if isinstance(last, tuple) else last)
    return int(node.end_mark.index)


def _is_block(node: yaml.Node) -> bool:
    return not (isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.flow_style)


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, yaml.Node | None] | None:
    """The value node at `part` (and its key node, for mappings), or None when absent."""
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == part:
                return value_node, key_node
        return None
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        return node.value[part], None
    return None


class _Dumper(yaml.SafeDumper):
    """Block mappings, and short lists of plain values on one line, as the example configs
    are written (`polygon: [[0.0, 0.0], [0.45, 0.0], ...]`, `days: [mon, tue]`)."""


def _represent_list(dumper: yaml.SafeDumper, items: list[Any]) -> yaml.Node:
    flat = all(
        not isinstance(item, dict)
        and (not isinstance(item, list) or all(not isinstance(i, dict | list) for i in item))
        for item in items
    )
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=flat)


_Dumper.add_representer(list, _represent_list)


def _dump(key: str, value: Any, column: int) -> str:
    """`key: value` as block YAML, its continuation lines indented to `column`."""
    return _dump_value({key: _plain(value)}, column)


def _dump_value(value: Any, column: int) -> str:
    """Block YAML of a plain value, its continuation lines indented to `column`."""
    text = yaml.dump(
        value,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    ).rstrip("\n")
    lines = text.split("\n")
    return "\n".join([lines[0], *(" " * column + line for line in lines[1:])])


def _nested(path: KeyPath, value: Any) -> Any:
    for part in reversed(path):
        value = {part: value}
    return value


def _set_in(data: Any, path: KeyPath, value: Any) -> Any:
    """`data` with `path` set to `value`, creating mappings on the way (for the check)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(data)
        items[head] = _set_in(items[head], rest, value)
        return items
    base = dict(data) if isinstance(data, dict) else {}
    base[head] = _set_in(base.get(head), rest, value)
    return base


class _FlowParent(Exception):
    """The change falls inside a flow collection or a null value: rewrite an entry above it."""


def _replace_entry(
    text: str, key_node: yaml.Node, value_node: yaml.Node, key: str, value: Any
) -> str:
    """Replace one entry's value. A block collection keeps its key line (and the comment on it)
    and the file's own indentation; anything else is rewritten as `key: value`."""
    plain = _plain(value)
    block_now = isinstance(value_node, yaml.MappingNode | yaml.SequenceNode)
    block_now = block_now and _is_block(value_node) and bool(value_node.value)
    if block_now and isinstance(plain, dict | list) and plain:
        dumped = _dump_value(plain, value_node.start_mark.column)
        if not dumped.startswith("["):
            start, end = value_node.start_mark.index, _content_end(value_node)
            return text[:start] + dumped + text[end:]
    column = key_node.start_mark.column
    start, end = key_node.start_mark.index, _content_end(value_node)
    return text[:start] + _dump(key, value, column) + text[end:]


def _apply(text: str, path: KeyPath, value: Any, file: str) -> str:
    if not path or not isinstance(path[-1], str):
        raise ValueError(f"a config change must end in a key name, got {path!r}")
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        raise ConfigError([f"{file}:1: (top level): the file is empty"])
    node: yaml.Node = root
    for depth, part in enumerate(path):
        found = _child(node, part)
        if found is None:
            return _insert(text, node, path, depth, value, file)
        if not _is_block(node):
            raise _FlowParent()
        child, key_node = found
        if depth == len(path) - 1:
            assert key_node is not None and isinstance(part, str)
            return _replace_entry(text, key_node, child, part, value)
        node = child
    raise AssertionError("unreachable: the loop returns at the last key")


def _insert(text: str, parent: yaml.Node, path: KeyPath, depth: int, value: Any, file: str) -> str:
    """Add the missing part of `path` at the end of `parent`, the deepest mapping that exists."""
    part = path[depth]
    is_null = isinstance(parent, yaml.ScalarNode) and parent.tag.endswith(":null")
    if is_null or (isinstance(parent, yaml.MappingNode) and not _is_block(parent)):
        raise _FlowParent()
    if isinstance(part, int) or not isinstance(parent, yaml.MappingNode) or not parent.value:
        where = ".".join(str(p) for p in path[:depth]) or "(top level)"
        line = parent.start_mark.line + 1
        raise ConfigError([f"{file}:{line}: {where}: expected a mapping here to add {part!r} to"])
    column = parent.value[0][0].start_mark.column
    end = _content_end(parent)
    # After the rest of that line: a comment on the last entry stays with it.
    line_end = text.find("\n", end)
    end = len(text) if line_end < 0 else line_end
    subtree = _nested(path[depth + 1 :], value)
    return text[:end] + "\n" + " " * column + _dump(str(part), subtree, column) + text[end:]


def _apply_with_fallback(text: str, path: KeyPath, value: Any, file: str) -> str:
    """Flow-style mappings on the way (`detector: {model: full_range}`) cannot take a block
    line inside them: rewrite the nearest block entry above them whole instead."""
    for cut in range(len(path), 0, -1):
        prefix = path[:cut]
        if not isinstance(prefix[-1], str):
            continue
        try:
            if cut == len(path):
                return _apply(text, path, value, file)
            data = yaml.safe_load(text) or {}
            current: Any = data
            for part in prefix:
                current = current[part] if isinstance(current, list) else (current or {}).get(part)
            return _apply(text, prefix, _set_in(current, path[cut:], value), file)
        except _FlowParent:
            continue
    raise ConfigError([f"{file}:1: cannot place {'.'.join(map(str, path))} in this file's layout"])


def edit_config_text(text: str, changes: Mapping[KeyPath, Any], file: str = "<config>") -> str:
    """The config text with each key path set, everything else byte for byte as it was.

    Raises ConfigError (file, line, key) when the result would not be a valid config.
    """
    expected = yaml.safe_load(text)
    for path, value in changes.items():
        text = _apply_with_fallback(text, path, value, file)
        expected = _set_in(expected, path, _plain(value))
    if yaml.safe_load(text) != expected:
        # Never write a file that does not say exactly what was meant.
        raise ConfigError([f"{file}:1: (edit): could not rewrite this file's layout safely"])
    parse_config(text, file)
    return text


def update_config_file(path: Path, changes: Mapping[KeyPath, Any]) -> str:
    """Set key paths in a config file in place (atomically, keeping its mode); returns the text.

    Nothing is written when the result would be invalid: the ConfigError names the file.
    """
    try:
        original = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}:1: (file): cannot read: {exc.strerror or exc}"]) from None
    text = edit_config_text(original, changes, str(path))
    if text == original:
        return text
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return text
