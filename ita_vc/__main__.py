"""``python -m ita_vc``."""

from __future__ import annotations

from ita_vc.cli import main

if __name__ == "__main__":
    main()
