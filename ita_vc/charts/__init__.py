"""Charts a person looks at: PNGs (matplotlib, for markdown, ``dvc plots`` and review diffs) and
self-contained interactive HTML (Bokeh, JS inlined from the installed package, fixed ids so
the same result renders to the same bytes)."""

from __future__ import annotations
