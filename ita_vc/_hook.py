"""Compatibility: git hooks installed by ita-vc 0.1/0.2 run ``python -m ita_vc._hook``.

The entry point lives in :mod:`ita_vc.rules.hook_entry`; ``ita-vc hooks install`` writes the
new module name. Kept so hooks already installed in users' repositories keep working.
"""

from __future__ import annotations

import sys

from ita_vc.rules.hook_entry import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
