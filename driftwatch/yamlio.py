"""YAML read with limits: a config file is small, UTF-8, shallow, and never expands.

``yaml.safe_load`` cannot run code, but it still does what a document asks: a "billion laughs"
of nested aliases is a few hundred bytes that expand to billions of nodes in whatever walks the
result (pydantic, ``yaml.safe_dump`` of the last good config), and a 50,000-deep ``[[[...]]]``
ends in a RecursionError from PyYAML's recursive composer. Here:

* size: at most ``MAX_BYTES`` (1 MiB; the shipped config is 5 KiB), refused unread beyond;
* encoding: UTF-8 (a BOM is allowed), anything else is refused with the byte and its offset;
* nesting: at most ``MAX_DEPTH`` levels, counted while composing (before any recursion limit);
* aliases: allowed, because an anchor for a shared list of columns is a fair use of YAML, but at
  most ``MAX_ALIASES`` of them, and the document expanded (every alias followed, the way pydantic
  will walk it) at most ``MAX_NODES`` nodes. A count of aliases alone does not stop a bomb (nine
  levels of nine aliases is 81 aliases and 9**9 nodes), so the expansion is what is bounded; it is
  counted on the composed node graph with an explicit stack and a budget, so the check itself
  costs at most ``MAX_NODES`` steps and also ends on a cyclic alias (``&a [*a]``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

__all__ = ["MAX_BYTES", "MAX_DEPTH", "YamlLimitError", "load_yaml", "read_yaml_file"]

MAX_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_NODES = 100_000


class YamlLimitError(yaml.YAMLError):
    """The document is valid YAML, but beyond what a config may be (depth, aliases, size)."""


class _LimitedLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YamlLimitError(f"more than {MAX_ALIASES} aliases (*name)")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlLimitError(
                    f"nested deeper than {MAX_DEPTH} levels (line {mark.line + 1},"
                    f" column {mark.column + 1})"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _check_expansion(root: yaml.Node) -> None:
    stack, seen = [root], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise YamlLimitError(
                f"its aliases expand to more than {MAX_NODES:,} values (an alias bomb or a"
                " cyclic alias)"
            )
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append(key)
                stack.append(value)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` of one document within the limits above (YamlLimitError beyond)."""
    loader = _LimitedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if loader._aliases:
            _check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml_file(path: str | os.PathLike[str], error: type[Exception]) -> Any:
    """The YAML document in ``path``; anything wrong is ``error`` with one line naming the file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise error(
            f"{path}: larger than {MAX_BYTES // 1024} KiB; refused unread (a config is small)"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start});"
            " re-save as UTF-8"
        ) from None
    try:
        return load_yaml(text)
    except YamlLimitError as exc:
        raise error(f"{path}: refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:  # not expected with MAX_DEPTH; never a traceback all the same
        raise error(f"{path}: refused: nested too deeply") from None
