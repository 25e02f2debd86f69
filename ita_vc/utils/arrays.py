"""Names for the numpy array types the core passes around (annotations only).

``FloatArray`` is a float64 array (closes, equity, indicator values), ``IntArray`` an int64 one
(bar timestamps in ms, indices), ``Int8Array`` the per-bar signal states (-1 / 0 / +1) and
``BoolArray`` a mask. Import them under ``if TYPE_CHECKING:``: nothing here is needed at run time.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

__all__ = ["BoolArray", "FloatArray", "Int8Array", "IntArray"]

FloatArray: TypeAlias = NDArray[np.float64]
IntArray: TypeAlias = NDArray[np.int64]
Int8Array: TypeAlias = NDArray[np.int8]
BoolArray: TypeAlias = NDArray[np.bool_]
