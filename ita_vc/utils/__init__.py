"""The ground floor: helpers every package may import, importing nothing of ita-vc above them.

``hashing`` (the one canonical-JSON and sha256 helper), ``tablehash`` (the encoding-independent
table hash), ``atomic`` (crash-safe file writes) and ``mappings`` (small mapping helpers). They
import no pandas at module level (``tablehash`` takes a DataFrame it is given), no dvc and no
git, so the pre-commit hook and the backtest engine can use them without the Persistent Store.
"""

from __future__ import annotations

__all__: list[str] = []
