from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from ita_vc.errors import IndexCorruptError
from ita_vc.store.index import MIGRATIONS, IndexRow, MetadataIndex


def _row(path: str, sha: str = "sha256:" + "0" * 64, **extra) -> IndexRow:
    values = {
        "file_id": "f_" + path,
        "path": path,
        "kind": "results",
        "format": "json",
        "sha256": sha,
        "size": 1,
        "symbol": None,
        "timeframe": None,
        "run_id": None,
        "rule_version": None,
        "created_at": "2025-01-01T00:00:00.000000Z",
        "meta_json": "{}",
    }
    values.update(extra)
    return IndexRow(**values)


def test_created_in_wal_mode_with_migrations_recorded(tmp_path):
    index = MetadataIndex(tmp_path / "idx" / "index.sqlite")
    assert index.query() == []
    with sqlite3.connect(index.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [m["version"] for m in index.migrations()] == [m[0] for m in MIGRATIONS]


def test_upsert_query_delete_and_duplicates(tmp_path):
    index = MetadataIndex(tmp_path / "index.sqlite")
    index.upsert(_row("a.json", symbol="BTC"))
    index.upsert(_row("b.json", run_id="r1"))
    index.upsert(_row("c.json", sha="sha256:" + "1" * 64))
    index.upsert(_row("a.json", symbol="ETH"))  # replace, not duplicate
    assert [r.path for r in index.query()] == ["a.json", "b.json", "c.json"]
    assert index.get("a.json").symbol == "ETH"
    assert [r.path for r in index.query(run_id="r1")] == ["b.json"]
    assert index.duplicates() == {"sha256:" + "0" * 64: ["a.json", "b.json"]}
    assert index.delete("b.json") is True
    assert index.delete("b.json") is False
    with pytest.raises(ValueError, match="unknown artifacts column"):
        index.query(colour="red")


def test_corrupt_index_names_the_cure(tmp_path):
    path = tmp_path / "index.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(IndexCorruptError, match="run `ita-vc index rebuild`"):
        MetadataIndex(path).query()


def test_replace_all_swaps_the_whole_index(tmp_path):
    index = MetadataIndex(tmp_path / "index.sqlite")
    index.upsert(_row("old.json"))
    assert index.replace_all([_row("new1.json"), _row("new2.json")]) == 2
    assert [r.path for r in index.query()] == ["new1.json", "new2.json"]


def test_concurrent_writer_processes_lose_no_rows(tmp_path):
    """Four processes upserting at once: every row lands, nobody sees 'database is locked'."""
    path = tmp_path / "index.sqlite"
    script = textwrap.dedent(
        f"""
        import sys
        from ita_vc.store.index import IndexRow, MetadataIndex
        index = MetadataIndex({str(path)!r})
        worker = sys.argv[1]
        for i in range(60):
            p = f"w{{worker}}/{{i}}.json"
            index.upsert(IndexRow("f_" + p, p, "results", "json", "sha256:" + "0" * 64, i,
                                  None, None, None, None, "2025-01-01T00:00:00Z", "{{}}"))
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(n)], stderr=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    assert len(MetadataIndex(path).query()) == 240
