"""Adapters over git and DVC: the only package that talks to them.

``vcs.gitcli`` runs the ``git`` executable (ita-vc does not use gitpython); ``vcs.dvc`` is the
only module that imports ``dvc`` (ruff's banned-api rule enforces both outside ``ita_vc/vcs/``).
"""

from __future__ import annotations

__all__: list[str] = []
