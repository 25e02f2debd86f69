"""Safe YAML reading: one bounded loading path, line numbers and duplicate-key detection.

Every YAML file ita-vc reads goes through :func:`compose_yaml`, which composes the document
once from libyaml's event stream (a state machine, no recursion) under limits, before anything
is constructed:

* at most :data:`MAX_BYTES` (1 MiB) of UTF-8 text;
* at most :data:`MAX_DEPTH` (50) nested collections;
* at most :data:`MAX_NODES` (10,000) nodes *after expanding aliases*, counted from the composed
  graph with each anchored node's expanded size memoised (a billion-laughs document is refused
  at the first alias that would pass the limit, never expanded);
* anchors and aliases are refused outright unless the caller allows them (``params.yaml``,
  where DVC users may share values with anchors); a recursive alias is always refused.

Reads never construct Python objects from tags (``!!python/object`` is refused): construction
uses PyYAML's ``SafeConstructor``. Duplicate mapping keys are an error, not "last one wins".
Round-trip edits (keeping comments and key order) live in :mod:`ita_vc.yaml_rewrite`; they only ever
see text that passed these checks.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "LOCKFILE_MAX_BYTES",
    "LOCKFILE_MAX_NODES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "YamlDocument",
    "YamlError",
    "compose_yaml",
    "load_lockfile",
    "load_yaml_document",
    "load_yaml_file",
    "load_yaml_text",
    "node_index",
    "node_lines",
    "read_file_bytes",
    "read_text_file",
]

MAX_BYTES = 1 << 20
MAX_DEPTH = 50
MAX_NODES = 10_000
LOCKFILE_MAX_BYTES = 16 << 20
"""``dvc.lock``, which DVC writes (not a person): large pipelines (``foreach`` stages) are
legitimately big, so it may hold up to 16 MiB ..."""
LOCKFILE_MAX_NODES = 1_000_000
"""... and 1,000,000 nodes after aliases (still a cap: a bomb is refused, never expanded)."""


class YamlError(ValueError):
    """A YAML document could not be read; the message names the source and the line."""

    def __init__(self, source: str, message: str, line: int | None = None) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line
        self.problem = message


# libyaml's parser when PyYAML was built with it (the wheels are): ~10x faster, same semantics.
# Only its event stream is used; composing and constructing happen here.
_BaseSafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictConstructor(yaml.constructor.SafeConstructor):
    """SafeConstructor that refuses duplicate keys and names the node of a value it cannot
    construct."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, ArithmeticError, TypeError, AttributeError, LookupError) as exc:
            # PyYAML's constructors on a value their tag does not fit (`!!timestamp x`,
            # `!!int ''`, a date that does not exist, an int of more than 4,300 digits)
            shown = node.value if isinstance(node, yaml.ScalarNode) else type(node).__name__
            if isinstance(shown, str) and len(shown) > 40:
                shown = shown[:40] + "..."
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"cannot read the value {shown!r}: {exc}",
                node.start_mark,
            ) from exc

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # PyYAML reports unhashable keys itself
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = line
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _line(event: Any) -> int | None:
    mark = getattr(event, "start_mark", None)
    return mark.line + 1 if mark is not None else None


@dataclass(slots=True)
class _Open:
    """A collection being composed."""

    node: yaml.SequenceNode | yaml.MappingNode
    start_total: int  # the expanded node count when it opened (itself included)
    height: int = 1  # nested collections, itself included
    key: yaml.Node | None = None  # a mapping's key waiting for its value
    anchor: str | None = None


@dataclass(slots=True)
class _Composer:
    source: str
    allow_aliases: bool
    max_depth: int
    max_nodes: int
    resolver: Any
    anchors: dict[str, yaml.Node] = field(default_factory=dict)
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> (nodes, height)
    stack: list[_Open] = field(default_factory=list)
    total: int = 0

    def fail(self, message: str, event: Any) -> YamlError:
        return YamlError(self.source, message, _line(event))

    def count(self, nodes: int, event: Any) -> None:
        self.total += nodes
        if self.total > self.max_nodes:
            what = "after expanding aliases " if self.allow_aliases and self.anchors else ""
            raise self.fail(
                f"more than {self.max_nodes:,} nodes {what}(the limit is "
                f"{self.max_nodes:,} per file)",
                event,
            )

    def check_anchor(self, event: Any) -> None:
        anchor = event.anchor
        if anchor is None:
            return
        if not self.allow_aliases:
            raise self.fail(
                f"anchors and aliases are not allowed in {self.source} "
                f"(found &{anchor}); write the value out",
                event,
            )
        if anchor in self.anchors:
            raise self.fail(f"duplicate anchor &{anchor}", event)

    def add(self, node: yaml.Node, _event: Any) -> yaml.Node | None:
        """Attach a finished node to its parent; the root when the stack is empty."""
        if not self.stack:
            return node
        parent = self.stack[-1]
        if isinstance(parent.node, yaml.SequenceNode):
            parent.node.value.append(node)
        elif parent.key is None:
            parent.key = node
        else:
            parent.node.value.append((parent.key, node))
            parent.key = None
        return None

    def grow(self, height: int) -> None:
        if self.stack:
            self.stack[-1].height = max(self.stack[-1].height, height + 1)

    def feed(self, event: Any) -> yaml.Node | None:
        """Take one event; returns the root node when the document's root is complete."""
        if isinstance(event, yaml.AliasEvent):
            return self.add(self.alias(event), event)
        if isinstance(event, yaml.ScalarEvent):
            return self.add(self.scalar(event), event)
        if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            self.start(event)
            return None
        if isinstance(event, yaml.CollectionEndEvent):
            done = self.stack.pop()
            done.node.end_mark = event.end_mark
            if done.anchor is not None:
                self.sizes[id(done.node)] = (self.total - done.start_total + 1, done.height)
            self.grow(done.height)
            return self.add(done.node, event)
        return None

    def alias(self, event: Any) -> yaml.Node:
        if not self.allow_aliases:
            raise self.fail(
                f"anchors and aliases are not allowed in {self.source} "
                f"(found *{event.anchor}); write the value out",
                event,
            )
        target = self.anchors.get(event.anchor)
        if target is None:
            raise self.fail(f"undefined alias *{event.anchor}", event)
        if id(target) not in self.sizes:
            raise self.fail(
                f"recursive alias *{event.anchor} (it refers to a collection that contains it)",
                event,
            )
        nodes, height = self.sizes[id(target)]
        if len(self.stack) + height > self.max_depth:
            raise self.fail(
                f"nesting deeper than {self.max_depth} levels after expanding "
                f"*{event.anchor} (the limit)",
                event,
            )
        self.count(nodes, event)
        self.grow(height)
        return target

    def scalar(self, event: Any) -> yaml.Node:
        self.check_anchor(event)
        self.count(1, event)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        node = yaml.ScalarNode(
            tag, event.value, event.start_mark, event.end_mark, style=event.style
        )
        if event.anchor is not None:
            self.anchors[event.anchor] = node
            self.sizes[id(node)] = (1, 0)
        return node

    def start(self, event: Any) -> None:
        self.check_anchor(event)
        if len(self.stack) + 1 > self.max_depth:
            raise self.fail(f"nesting deeper than {self.max_depth} levels (the limit)", event)
        self.count(1, event)
        kind = yaml.SequenceNode if isinstance(event, yaml.SequenceStartEvent) else yaml.MappingNode
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(kind, None, event.implicit)
        collection = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
        if event.anchor is not None:
            self.anchors[event.anchor] = collection
        self.stack.append(_Open(collection, self.total, anchor=event.anchor))


def compose_yaml(
    text: str,
    source: str = "<string>",
    *,
    allow_aliases: bool = False,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> yaml.Node | None:
    """Compose one YAML document under the limits (None for an empty document).

    Raises:
        YamlError: too large, too deep, too many nodes (after expanding aliases), an anchor or
            alias where they are not allowed, a recursive alias, malformed YAML, or more than
            one document; with the line where the problem is.
    """
    if len(text) > max_bytes:
        raise YamlError(source, f"more than {max_bytes:,} bytes (the limit)")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise YamlError(source, "not valid UTF-8 text", text[: exc.start].count("\n") + 1) from exc
    if size > max_bytes:
        raise YamlError(source, f"{size:,} bytes, the limit is {max_bytes:,}")
    loader = _BaseSafeLoader(text)
    composer = _Composer(source, allow_aliases, max_depth, max_nodes, loader)
    root: yaml.Node | None = None
    documents = 0
    try:
        while loader.check_event():
            event = loader.get_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise composer.fail(
                        "expected a single document in the stream, but found another document",
                        event,
                    )
                continue
            finished = composer.feed(event)
            if finished is not None:
                root = finished
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        if "maximum nesting depth" in problem:  # libyaml's own cap on flow collections
            problem = f"nesting deeper than {max_depth} levels (the limit)"
        raise YamlError(source, problem, mark.line + 1 if mark is not None else None) from exc
    except yaml.YAMLError as exc:
        raise YamlError(source, str(exc)) from exc
    finally:
        loader.dispose()
    return root


def _construct(node: yaml.Node | None, source: str) -> Any:
    if node is None:
        return None
    try:
        return _StrictConstructor().construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        if "could not determine a constructor" in str(exc):
            problem = f"tag not allowed (safe loading only): {problem}"
        raise YamlError(source, problem, line) from exc
    except yaml.YAMLError as exc:
        raise YamlError(source, str(exc)) from exc
    except (ValueError, ArithmeticError, TypeError, AttributeError, LookupError) as exc:
        raise YamlError(source, f"cannot read a value: {exc}") from exc  # outside a node


def _index(root: yaml.Node | None) -> dict[str, tuple[int, str | None]]:
    """Dotted key path -> (line, raw scalar text); a shared (aliased) node is walked once."""
    index: dict[str, tuple[int, str | None]] = {}
    seen: set[int] = set()
    todo: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    while todo:
        node, prefix = todo.pop()
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode) or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            items = [
                (f"{prefix}{k.value if isinstance(k, yaml.ScalarNode) else '?'}", k, v)
                for k, v in node.value
            ]
        else:
            items = [(f"{prefix}{i}", v, v) for i, v in enumerate(node.value)]
        for key, where, value in items:
            raw = value.value if isinstance(value, yaml.ScalarNode) else None
            index.setdefault(key, (where.start_mark.line + 1, raw))
        # depth first in document order: a shared node is indexed where it is defined (&a)
        todo.extend((value, key + ".") for key, _where, value in reversed(items))
    return index


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A safely loaded document: its data and where each dotted key path is."""

    source: str
    data: Any
    index: Mapping[str, tuple[int, str | None]]

    def line(self, dotted: str) -> int | None:
        """The 1-based line of a dotted key path, or None."""
        found = self.index.get(dotted)
        return found[0] if found else None

    def raw(self, dotted: str) -> str | None:
        """The scalar text as typed at a dotted key path (``1.10``, not 1.1), or None."""
        found = self.index.get(dotted)
        return found[1] if found else None


def load_yaml_document(
    text: str,
    source: str = "<string>",
    *,
    allow_aliases: bool = False,
    max_bytes: int = MAX_BYTES,
) -> YamlDocument:
    """Compose once (under the limits), index the key paths, then construct safely.

    Raises:
        YamlError: see :func:`compose_yaml`; also a python tag, a duplicate key or a value
            YAML cannot construct (with the line).
    """
    root = compose_yaml(text, source, allow_aliases=allow_aliases, max_bytes=max_bytes)
    index = _index(root)  # before constructing: merge keys rewrite the mapping nodes
    return YamlDocument(source, _construct(root, source), index)


def node_index(text: str | yaml.Node | None) -> dict[str, tuple[int, str | None]]:
    """Map each dotted key path to ``(1-based line, raw scalar text or None)``.

    ``text`` is YAML text (composed under the limits, aliases allowed) or an already composed
    node (reused, never composed again). The raw text is what the author typed (``1.10`` even
    where YAML reads the number 1.1), so messages can quote it. Empty when the text is not
    valid YAML or breaks a limit. A node shared through an alias is walked once.
    """
    if isinstance(text, str):
        try:
            text = compose_yaml(text, allow_aliases=True)
        except YamlError:
            return {}
    return _index(text)


def node_lines(text: str) -> dict[str, int]:
    """Map each dotted key path of the document's mappings to its 1-based line number."""
    return {key: line for key, (line, _raw) in node_index(text).items()}


def load_yaml_text(
    text: str,
    source: str = "<string>",
    *,
    allow_aliases: bool = False,
    max_bytes: int = MAX_BYTES,
    max_nodes: int = MAX_NODES,
) -> Any:
    """Parse one YAML document safely, under the limits.

    ``allow_aliases``: accept anchors and aliases (``params.yaml`` only), with the expansion
    capped at :data:`MAX_NODES` nodes.

    Raises:
        YamlError: malformed YAML, a limit broken, an anchor/alias where not allowed, a python
            tag, or a duplicate key (with the line).
    """
    root = compose_yaml(
        text, source, allow_aliases=allow_aliases, max_bytes=max_bytes, max_nodes=max_nodes
    )
    return _construct(root, source)


def read_file_bytes(
    path: str | Path, *, max_bytes: int = MAX_BYTES, follow_symlinks: bool = True
) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (never a FIFO or a device, which
    could block or never end; with ``follow_symlinks`` false, never a symlink).

    Raises:
        YamlError: unreadable, not a regular file, or too large.
    """
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if not follow_symlinks and os.path.islink(path):
            raise YamlError(str(path), "is a symbolic link") from exc
        raise YamlError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise YamlError(str(path), "not a regular file")
        if info.st_size > max_bytes:
            raise YamlError(
                str(path), f"file is {info.st_size:,} bytes, the limit is {max_bytes:,}"
            )
        chunks = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise YamlError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    if len(raw) > max_bytes:
        raise YamlError(str(path), f"file is more than {max_bytes:,} bytes (the limit)")
    return raw


def read_text_file(path: str | Path, *, max_bytes: int | None = None) -> str:
    """Read a UTF-8 text file of at most ``max_bytes`` (default :data:`MAX_BYTES`).

    Raises:
        YamlError: unreadable, not a regular file, too large, or not UTF-8 (with the line of
            the first bad byte).
    """
    raw = read_file_bytes(path, max_bytes=MAX_BYTES if max_bytes is None else max_bytes)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlError(str(path), "not valid UTF-8", line) from exc


def load_yaml_file(
    path: str | Path,
    *,
    max_bytes: int | None = None,
    allow_aliases: bool = False,
    max_nodes: int = MAX_NODES,
) -> Any:
    """Read and parse a UTF-8 YAML file safely, under the limits.

    Raises:
        YamlError: unreadable, too large, not UTF-8, invalid YAML, a limit broken, or an
            anchor/alias where not allowed.
    """
    limit = MAX_BYTES if max_bytes is None else max_bytes
    return load_yaml_text(
        read_text_file(path, max_bytes=limit),
        str(path),
        allow_aliases=allow_aliases,
        max_bytes=limit,
        max_nodes=max_nodes,
    )


def load_lockfile(path: str | Path) -> Any:
    """``dvc.lock`` under its own limits (:data:`LOCKFILE_MAX_BYTES`,
    :data:`LOCKFILE_MAX_NODES`; DVC writes anchors when params.yaml has them).

    Raises:
        YamlError: as :func:`load_yaml_file`.
    """
    return load_yaml_file(
        path, max_bytes=LOCKFILE_MAX_BYTES, allow_aliases=True, max_nodes=LOCKFILE_MAX_NODES
    )
