"""Round-trip YAML edits with ruamel.yaml: comments, key order and quoting are kept.

Used only to *write* files a person also edits (rule versions, lifecycle files, params.yaml).
Reading for validation always goes through the safe loader in :mod:`ita_vc.yaml_read`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from ita_vc.errors import ItaVcError

__all__ = ["YamlEditError", "dump_rt", "load_rt", "parse_set_value", "set_path", "to_rt"]


class YamlEditError(ItaVcError, ValueError):
    """A round-trip load failed (or broke a limit of the safe loader), or a dotted path cannot
    be set. Callers map it to their own error (rules: exit 4, params: exit 11); unmapped, it
    still ends a command with its message (exit 1), never a traceback."""


def _yaml() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(
        type(None), lambda rep, _data: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml


def load_rt(text: str, source: str = "<string>", *, allow_aliases: bool = False) -> Any:
    """Load text for editing (a ``CommentedMap`` for a mapping document).

    The text first passes the safe loader's checks (:func:`ita_vc.yaml_read.compose_yaml`: size,
    depth, nodes after expansion, anchors/aliases only with ``allow_aliases``), so ruamel's
    recursive, pure-Python composer never sees a hostile document.

    Raises:
        YamlEditError: the text is not valid YAML or breaks a limit (the message names
            ``source`` and the line).
    """
    from ita_vc.yaml_read import YamlError, compose_yaml

    try:
        compose_yaml(text, source, allow_aliases=allow_aliases)
    except YamlError as exc:
        raise YamlEditError(str(exc)) from exc
    try:
        return _yaml().load(text)
    except YAMLError as exc:
        raise YamlEditError(f"{source}: {exc}") from exc


def dump_rt(doc: Any) -> str:
    """Serialise a round-trip document back to text."""
    stream = io.StringIO()
    _yaml().dump(doc, stream)
    return stream.getvalue()


def to_rt(value: Any) -> Any:
    """Plain data -> ruamel containers (so new mappings keep their key order on dump)."""
    if isinstance(value, Mapping) and not isinstance(value, CommentedMap):
        out = CommentedMap()
        for key, item in value.items():
            out[key] = to_rt(item)
        return out
    if isinstance(value, list | tuple) and not isinstance(value, CommentedSeq):
        seq = CommentedSeq([to_rt(v) for v in value])
        if all(not isinstance(v, Mapping | list | tuple) for v in value):
            seq.fa.set_flow_style()
        return seq
    return value


def parse_set_value(text: str) -> Any:
    """Parse the value of a ``key.path=value`` override as one safe YAML scalar or collection."""
    from ita_vc.yaml_read import YamlError, load_yaml_text

    try:
        return load_yaml_text(text, "<--set value>")
    except YamlError as exc:
        raise YamlEditError(f"cannot parse value {text!r}: {exc}") from exc


def set_path(doc: Any, dotted: str, value: Any) -> None:
    """Set ``doc[a][b][0]...`` for ``dotted = "a.b.0"``; list indexes must exist.

    Raises:
        YamlEditError: a missing intermediate key, a bad index, or a scalar in the way.
    """
    parts = dotted.split(".")
    if not dotted or any(not p for p in parts):
        raise YamlEditError(f"bad key path {dotted!r}")
    node = doc
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, Mapping):
            if last:
                node[part] = to_rt(value)  # type: ignore[index]
                return
            if part not in node:
                raise YamlEditError(f"{where}: no such key")
            node = node[part]
        elif isinstance(node, Sequence) and not isinstance(node, str):
            if not part.isdigit() or int(part) >= len(node):
                raise YamlEditError(f"{where}: not an index of a {len(node)}-item list")
            if last:
                node[int(part)] = to_rt(value)  # type: ignore[index]
                return
            node = node[int(part)]
        else:
            raise YamlEditError(f"{where}: cannot descend into a {type(node).__name__}")
