"""The validation suite (issue #16, work in progress): is a run's edge real?"""

from __future__ import annotations
