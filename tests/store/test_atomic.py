from __future__ import annotations

import os
import time

import pytest

from ita_vc.utils.atomic import (
    AtomicWriteError,
    atomic_write_bytes,
    atomic_write_with,
    is_temp_file,
    remove_stale_temp_files,
)
from ita_vc.utils.hashing import hash_bytes


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if is_temp_file(p.name)]


def test_write_and_replace(tmp_path):
    target = tmp_path / "sub" / "a.bin"
    assert atomic_write_bytes(target, b"one") == (hash_bytes(b"one"), 3)
    assert atomic_write_bytes(target, b"two!") == (hash_bytes(b"two!"), 4)
    assert target.read_bytes() == b"two!"
    assert _leftovers(target.parent) == []


def test_overwrite_false_refuses_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(AtomicWriteError):
        atomic_write_bytes(target, b"new", overwrite=False)
    with pytest.raises(AtomicWriteError):
        atomic_write_with(target, lambda p: p.write_bytes(b"new"), overwrite=False)
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_overwrite_false_is_race_free(tmp_path):
    """A file that appears after the existence check is still never replaced (os.link)."""
    target = tmp_path / "a.bin"

    def writer(tmp):
        tmp.write_bytes(b"mine")
        target.write_bytes(b"someone else's")  # appears while we write

    with pytest.raises(AtomicWriteError):
        atomic_write_with(target, writer, overwrite=False)
    assert target.read_bytes() == b"someone else's"
    assert _leftovers(tmp_path) == []


def test_a_failing_writer_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")

    def broken(tmp):
        tmp.write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write_with(target, broken)
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_before_publish_sees_the_final_hash_before_the_file_is_visible(tmp_path):
    target = tmp_path / "a.bin"
    seen = []

    def hook(sha, size):
        seen.append((sha, size, target.exists()))

    atomic_write_with(target, lambda p: p.write_bytes(b"abc"), before_publish=hook)
    assert seen == [(hash_bytes(b"abc"), 3, False)]


def test_files_get_umask_permissions_not_0600(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"x")
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    assert (target.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)


def test_stale_temp_files_are_swept(tmp_path):
    stale = tmp_path / ".a.bin.xyz.ita-tmp"
    fresh = tmp_path / ".b.bin.abc.ita-tmp"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert remove_stale_temp_files(tmp_path) == [stale]
    assert fresh.exists()
    assert remove_stale_temp_files(tmp_path / "missing") == []
