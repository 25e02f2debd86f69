"""Opening candle files: regular files only; zip archives of one member within limits."""

from __future__ import annotations

import os
import zipfile

import pytest

from ita_vc.candles import sources
from ita_vc.candles.sources import check_candle_path, first_line, open_candle_source
from ita_vc.errors import DataValidationError
from tests.candles.conftest import binance_lines, candles

LINE = b"1735689600000,1.0,2.0,0.5,1.5,3.0,1735689659999,0,0,0,0,0\n"


def _zip(path, members, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _patch_central(path, offset, value):
    """Overwrite a 2-byte field of the (single) central directory entry."""
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02") + offset
    data[at : at + 2] = value.to_bytes(2, "little")
    path.write_bytes(bytes(data))
    return path


def test_plain_files_and_single_member_zips_read_the_same(tmp_path):
    text = binance_lines(candles(3)).encode()
    plain = tmp_path / "k.csv"
    plain.write_bytes(text)
    archive = _zip(tmp_path / "k.zip", {"k.csv": text})
    for path in (plain, archive):
        with open_candle_source(path) as stream:
            assert stream.read() == text
        assert first_line(path) == text.decode().splitlines(keepends=True)[0]


def test_what_is_not_a_regular_file(tmp_path):
    with pytest.raises(DataValidationError, match=r"none.csv: no such file"):
        check_candle_path(tmp_path / "none.csv")
    (tmp_path / "dir").mkdir()
    with pytest.raises(DataValidationError, match=r"dir: is a directory, not a candle file"):
        check_candle_path(tmp_path / "dir")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(DataValidationError, match=r"fifo: not a regular file"):
        check_candle_path(tmp_path / "fifo")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(DataValidationError, match=r"dangling: no such file"):
        check_candle_path(tmp_path / "dangling")


@pytest.mark.parametrize(
    ("members", "match"),
    [
        ({}, r"k.zip: a zip must hold exactly one CSV file, this one holds 0"),
        (
            {"a.csv": LINE, "b.csv": LINE},
            r"k.zip: a zip must hold exactly one CSV file, this one holds 2: 'a.csv', 'b.csv'",
        ),
        ({"folder/": b""}, r"k.zip: member 'folder/' is a folder, not a CSV file"),
        ({"../evil.csv": LINE}, r"k.zip: member '../evil.csv' has an absolute or '..' path"),
        ({"/etc/evil.csv": LINE}, r"member '/etc/evil.csv' has an absolute or '..' path"),
        ({"a/../../evil.csv": LINE}, r"member 'a/../../evil.csv' has an absolute or '..'"),
    ],
)
def test_refused_zip_layouts(tmp_path, members, match):
    archive = _zip(tmp_path / "k.zip", members)
    with pytest.raises(DataValidationError, match=match), open_candle_source(archive):
        pass


def test_a_zip_bomb_is_refused_from_its_directory_before_inflating(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z, z.open("k.csv", "w") as m:
        for _ in range(64):
            m.write(LINE * 2048)  # 7.6 MB of one line: deflates ~340x
    info = zipfile.ZipFile(archive).infolist()[0]
    ratio = info.file_size / info.compress_size
    assert ratio > sources.MAX_EXPANSION
    with pytest.raises(
        DataValidationError,
        match=(
            rf"bomb.zip: member 'k.csv' expands {ratio:,.0f}x \({info.compress_size:,} -> "
            rf"{info.file_size:,} bytes\), over the limit of 100x"
        ),
    ):
        first_line(archive)


def test_small_members_may_compress_well(tmp_path):
    archive = _zip(tmp_path / "k.zip", {"k.csv": LINE * 4000})  # 236 KB, ~500x
    info = zipfile.ZipFile(archive).infolist()[0]
    assert info.file_size / info.compress_size > sources.MAX_EXPANSION
    assert info.file_size < sources.EXPANSION_CHECK_FROM
    assert first_line(archive) == LINE.decode()


def test_the_uncompressed_size_limit(tmp_path, monkeypatch):
    archive = _zip(tmp_path / "k.zip", {"k.csv": LINE * 100}, zipfile.ZIP_STORED)
    monkeypatch.setattr(sources, "MAX_MEMBER_BYTES", 5000)
    with pytest.raises(
        DataValidationError,
        match=(
            r"k.zip: member 'k.csv' declares 5,800 bytes uncompressed, over the limit of "
            r"5,000 bytes"
        ),
    ):
        first_line(archive)


def test_encrypted_and_unknown_methods_are_refused(tmp_path):
    encrypted = _patch_central(_zip(tmp_path / "e.zip", {"k.csv": LINE}), 8, 0x1)
    with pytest.raises(DataValidationError, match=r"e.zip: member 'k.csv' is encrypted"):
        first_line(encrypted)
    odd = _patch_central(_zip(tmp_path / "m.zip", {"k.csv": LINE}), 10, 99)
    with pytest.raises(
        DataValidationError,
        match=r"m.zip: member 'k.csv' uses compression "
        r"method 99, which cannot be read",
    ):
        first_line(odd)


def test_corrupt_archives_name_the_file(tmp_path):
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.zip"
    noise.write_bytes(os.urandom(4096))
    whole = _zip(tmp_path / "whole.zip", {"k.csv": LINE * 5000})
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    for path in (empty, noise, cut):
        with pytest.raises(DataValidationError, match=rf"{path.name}: not a readable zip archive"):
            first_line(path)
    stored = bytearray(
        _zip(tmp_path / "crc.zip", {"k.csv": LINE * 20}, zipfile.ZIP_STORED).read_bytes()
    )
    at = stored.index(LINE) + 100
    stored[at] = ord("7") if stored[at] != ord("7") else ord("8")
    (tmp_path / "crc.zip").write_bytes(bytes(stored))
    with (
        pytest.raises(
            DataValidationError,
            match=r"crc.zip: not a readable zip archive: Bad "
            r"CRC-32",
        ),
        open_candle_source(tmp_path / "crc.zip") as stream,
    ):
        stream.read()
