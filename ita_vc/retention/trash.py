"""The trash: soft-deleted DVC cache objects, moved with ``os.replace`` and journaled.

Layout below ``paths.trash_root`` (default ``.ita/trash``): ``objects/<md5[:2]>/<rest>`` - the
DVC cache layout - and ``journal.jsonl``, one JSON line per step: ``begin`` before a move,
``done`` after it (``trash``, ``restore``, ``purge``). A move is one ``os.replace`` on the cache's
own filesystem, so an object is always in the cache or in the trash, never in neither; an
interrupted step is settled by :meth:`Trash.recover` from the journal (an interrupted trash
batch is rolled back, so the next plan decides again).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ita_vc.errors import RetentionRefusedError
from ita_vc.utils.atomic import fsync_dir

if TYPE_CHECKING:
    from ita_vc.workspace import Workspace

__all__ = ["Trash", "TrashEntry"]

_OID = re.compile(r"[0-9a-f]{32}(\.dir)?")
_OID_HEAD = re.compile(r"[0-9a-f]{2}")


@dataclass(frozen=True, slots=True)
class TrashEntry:
    """An object in the trash."""

    oid: str
    size: int
    path: str
    cls: str | None
    trashed_at: str
    runs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "oid": self.oid,
            "size": self.size,
            "path": self.path,
            "class": self.cls,
            "trashed_at": self.trashed_at,
            "runs": list(self.runs),
        }


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Trash:
    """The trash of a workspace, next to a DVC cache folder."""

    def __init__(self, workspace: Workspace, cache_dir: Path) -> None:
        self.workspace = workspace
        self.root = workspace.trash_dir
        self.objects = self.root / "objects"  # the layout of Workspace.trashed_object_path
        self.journal = self.root / "journal.jsonl"
        self.cache_objects = cache_dir / "files" / "md5"

    # -- paths ---------------------------------------------------------------------------
    @staticmethod
    def _rel(oid: str) -> Path:
        return Path(oid[:2]) / oid[2:]

    def cache_path(self, oid: str) -> Path:
        """Where DVC keeps ``oid``."""
        return self.cache_objects / self._rel(oid)

    def trash_path(self, oid: str) -> Path:
        """Where the trash keeps ``oid``."""
        return self.workspace.trashed_object_path(oid)

    def check_same_filesystem(self) -> None:
        """Refuse a trash that ``os.replace`` cannot reach from the cache.

        Raises:
            RetentionRefusedError: the trash and the cache are on different filesystems.
        """
        self.objects.mkdir(parents=True, exist_ok=True)
        if (
            self.cache_objects.exists()
            and os.stat(self.cache_objects).st_dev != os.stat(self.objects).st_dev
        ):
            raise RetentionRefusedError(
                f"the trash ({self.root}) and the DVC cache ({self.cache_objects}) are on "
                "different filesystems: soft delete needs an atomic move; put paths.trash_root "
                "on the cache's filesystem"
            )

    # -- the journal ---------------------------------------------------------------------
    def _log(self, *records: dict[str, Any]) -> None:
        """Append records and make them durable (one fsync for the whole batch)."""
        self.root.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        with open(self.journal, "a", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())

    def records(self) -> list[dict[str, Any]]:
        """Every journal line that is a step record (a torn last line from a crash, or a line
        that is not a record of this journal, is ignored)."""
        if not self.journal.exists():
            return []
        out = []
        text = self.journal.read_bytes().decode("utf-8", "replace")
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if (
                    isinstance(record, dict)
                    and _OID.fullmatch(str(record.get("oid", "")))
                    and record.get("op") in ("trash", "restore", "purge")
                ):
                    out.append(record)
        return out

    def _move(self, op: str, oid: str, src: Path, dst: Path, info: dict[str, Any]) -> None:
        self._log({"op": op, "step": "begin", "oid": oid, "at": _now(), **info})
        if src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        self._log({"op": op, "step": "done", "oid": oid, "at": _now()})

    def recover(self) -> list[str]:
        """Settle steps a killed process left open; returns their object ids.

        An interrupted *trash* step is rolled back: the object goes back into the cache (if
        it was moved), so the next plan - made from the repository as it is now, which may
        need the object again - decides afresh; nothing a current plan keeps stays trashed.
        An interrupted *restore* is completed (the object was wanted back). An interrupted
        *purge* is rolled back too: an object it did not delete yet stays in the trash, and the
        next purge decides again (a run may have been pinned since).
        """
        open_steps: dict[str, dict[str, Any]] = {}
        for record in self.records():
            key = f"{record.get('op')}:{record.get('oid')}"
            if record.get("step") == "begin":
                open_steps[key] = record
            else:
                open_steps.pop(key, None)
        settled = []
        for record in open_steps.values():
            oid, op = str(record["oid"]), record["op"]
            if op == "trash":
                src, dst = self.trash_path(oid), self.cache_path(oid)
                if src.exists() and not dst.exists():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src, dst)
                self._log({"op": "trash", "step": "rolled_back", "oid": oid, "at": _now()})
            elif op == "restore":
                self._move("restore", oid, self.trash_path(oid), self.cache_path(oid), {})
            elif op == "purge":
                self._log({"op": "purge", "step": "rolled_back", "oid": oid, "at": _now()})
            settled.append(oid)
        return settled

    # -- operations ----------------------------------------------------------------------
    def put(self, oid: str, *, size: int, path: str, cls: str | None, runs: list[str]) -> None:
        """Move an object from the cache to the trash."""
        self.put_many(
            [{"oid": oid, "size": size, "path": path, "class": cls, "runs": sorted(runs)}]
        )

    def put_many(self, items: list[dict[str, Any]]) -> None:
        """Move a batch of objects to the trash: every ``begin`` is durable before the first
        move, every ``done`` after the last (two fsyncs per batch, not per object)."""
        if not items:
            return
        now = _now()
        self._log(*({"op": "trash", "step": "begin", "at": now, **item} for item in items))
        folders = set()
        for item in items:
            src, dst = self.cache_path(item["oid"]), self.trash_path(item["oid"])
            if src.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
                folders.add(dst.parent)
        for folder in folders:
            fsync_dir(folder)
        self._log(
            *({"op": "trash", "step": "done", "oid": item["oid"], "at": _now()} for item in items)
        )

    def restore(self, oid: str) -> bool:
        """Move an object back into the cache; False if it is not in the trash."""
        if not self.trash_path(oid).exists():
            return False
        self._move("restore", oid, self.trash_path(oid), self.cache_path(oid), {})
        return True

    def purge(self, oid: str) -> int:
        """Delete an object from the trash for good; returns the bytes freed."""
        target = self.trash_path(oid)
        if not target.exists():
            return 0
        size = target.stat().st_size
        self._log({"op": "purge", "step": "begin", "oid": oid, "at": _now()})
        target.chmod(0o644)
        target.unlink()
        self._log({"op": "purge", "step": "done", "oid": oid, "at": _now(), "size": size})
        return size

    def entries(self) -> list[TrashEntry]:
        """Objects in the trash now, with what the journal knows about them."""
        latest: dict[str, dict[str, Any]] = {}
        for record in self.records():
            if record.get("op") == "trash" and record.get("step") == "begin":
                latest[str(record["oid"])] = record
        found = []
        if self.objects.is_dir():
            for folder in sorted(self.objects.iterdir()):
                if not folder.is_dir() or not _OID_HEAD.fullmatch(folder.name):
                    continue  # not an object folder (a .DS_Store, a stray file): skipped
                for file in sorted(folder.iterdir()):
                    oid = folder.name + file.name
                    if not file.is_file() or not _OID.fullmatch(oid):
                        continue
                    info = latest.get(oid, {})
                    found.append(
                        TrashEntry(
                            oid,
                            file.stat().st_size,
                            str(info.get("path", "")),
                            info.get("class"),
                            str(info.get("at", "")),
                            tuple(info.get("runs", ())),
                        )
                    )
        return found
