"""Safe YAML reading with line numbers and duplicate-key detection.

Reads never construct Python objects from tags (``!!python/object`` is refused): the loader is a
subclass of PyYAML's ``SafeLoader``. Duplicate mapping keys are an error, not "last one wins".
Round-trip edits (keeping comments and key order) live in :mod:`ita_vc.yamledit`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "YamlError",
    "load_yaml_file",
    "load_yaml_text",
    "node_index",
    "node_lines",
    "read_text_file",
]


class YamlError(ValueError):
    """A YAML document could not be read; the message names the source and the line."""

    def __init__(self, source: str, message: str, line: int | None = None) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line


# libyaml's parser when PyYAML was built with it (the wheels are): ~10x faster, same semantics;
# the constructor stays PyYAML's safe one.
_BaseSafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictSafeLoader(_BaseSafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses duplicate keys and remembers the line of each top-level key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # PyYAML reports unhashable keys itself
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = line
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def node_index(text: str) -> dict[str, tuple[int, str | None]]:
    """Map each dotted key path to ``(1-based line, raw scalar text or None)``.

    The raw text is what the author typed (``1.10`` even where YAML reads the number 1.1), so
    messages can quote it. Empty when the text is not valid YAML.
    """
    try:
        root = yaml.compose(text, Loader=_BaseSafeLoader)
    except yaml.YAMLError:
        return {}
    index: dict[str, tuple[int, str | None]] = {}

    def walk(node: yaml.Node | None, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = f"{prefix}{key_node.value}"
                raw = value_node.value if isinstance(value_node, yaml.ScalarNode) else None
                index.setdefault(key, (key_node.start_mark.line + 1, raw))
                walk(value_node, key + ".")
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                key = f"{prefix}{i}"
                raw = item.value if isinstance(item, yaml.ScalarNode) else None
                index.setdefault(key, (item.start_mark.line + 1, raw))
                walk(item, key + ".")

    walk(root, "")
    return index


def node_lines(text: str) -> dict[str, int]:
    """Map each dotted key path of the document's mappings to its 1-based line number."""
    return {key: line for key, (line, _raw) in node_index(text).items()}


def load_yaml_text(text: str, source: str = "<string>") -> Any:
    """Parse one YAML document safely.

    Raises:
        YamlError: malformed YAML, a python tag, or a duplicate key (with the line).
    """
    try:
        return yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        if "could not determine a constructor" in str(exc):
            problem = f"tag not allowed (safe loading only): {problem}"
        raise YamlError(source, problem, line) from exc
    except yaml.YAMLError as exc:
        raise YamlError(source, str(exc)) from exc


def read_text_file(path: str | Path, *, max_bytes: int | None = None) -> str:
    """Read a UTF-8 text file, refusing files larger than ``max_bytes``.

    Raises:
        YamlError: unreadable, too large, or not UTF-8 (with the line of the first bad byte).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise YamlError(str(path), f"file is {size} bytes, the limit is {max_bytes}")
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlError(str(path), "not valid UTF-8", line) from exc
    return text


def load_yaml_file(path: str | Path, *, max_bytes: int | None = None) -> Any:
    """Read and parse a UTF-8 YAML file safely.

    Raises:
        YamlError: unreadable, too large, not UTF-8, or invalid YAML.
    """
    return load_yaml_text(read_text_file(path, max_bytes=max_bytes), str(path))
