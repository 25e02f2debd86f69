"""Self-contained, deterministic Bokeh HTML.

Bokeh names its documents and elements with random UUIDs and its models with a process-wide
counter (``p1001``, ``p1002``, ... continuing across renders). :func:`standalone_html` renders
with the JS and CSS of the installed Bokeh inlined (nothing fetched from the internet) and then
renames every id in order of first appearance, so two renders of the same figures are byte
for byte the same file, in any process.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bokeh.model import Model

__all__ = ["standalone_html"]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MODEL_ID = re.compile(r'"(p\d+)"')


def _renamed(tail: str) -> str:
    """Every UUID and quoted model id of the document part renamed in order of first
    appearance (``ita-doc-1``, ... and ``p1``, ...)."""
    uuids: dict[str, str] = {}
    models: dict[str, str] = {}

    def uuid(match: re.Match[str]) -> str:
        return uuids.setdefault(match.group(0), f"ita-doc-{len(uuids) + 1}")

    def model(match: re.Match[str]) -> str:
        return '"' + models.setdefault(match.group(1), f"p{len(models) + 1}") + '"'

    return _MODEL_ID.sub(model, _UUID.sub(uuid, tail))


def standalone_html(root: Model, title: str) -> bytes:
    """``root`` (a figure or layout) as one HTML file with Bokeh's JS inlined, fixed ids.

    Only the document part (after the last ``<body>``, where Bokeh writes the root div, the
    JSON document and the embedding script) is renamed: the inlined library is left as it is.
    """
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    html = file_html(root, INLINE, title)
    cut = html.rfind("<body>")
    return (html[:cut] + _renamed(html[cut:])).encode("utf-8")
