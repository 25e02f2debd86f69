"""Hostile candle files and arguments (issue 12 items 6-9, issue 13 item 6): each is refused with
its documented exit code and a message naming the file (row, value), and nothing stored changes.

Every case runs in-process through the CLI's error boundary (``invoke``); the cases marked
``REAL`` run again as a real ``ita-vc`` subprocess (at least one per area).
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import pytest

from ita_vc.candles import CandleStore
from ita_vc.workspace import Workspace
from tests.candles.conftest import MIN, T0, binance_lines, candles
from tests.helpers import invoke, ita_vc_subprocess

REAL = "subprocess"
BACKTESTING_DATA = Path(__import__("backtesting").__file__).parent / "test"
_BAR = "1,2,0.5,1.5,3"
_LINE = f"{T0},1.0,2.0,0.5,1.5,3.0,{T0 + 59_999},0,0,0,0,0\n".encode()
_IMPORT = ("--market", "generic", "--symbol", "X")


def _csv(folder: Path, *stamps: object, name: str = "bars.csv") -> Path:
    path = folder / name
    path.write_text("ts,open,high,low,close,volume\n" + "".join(f"{s},{_BAR}\n" for s in stamps))
    return path


def _zip(
    folder: Path, members: dict[str, bytes], *, name: str = "bars.zip", flag: int | None = None
) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    if flag is not None:  # set a general-purpose flag in the central directory (encryption)
        data = bytearray(path.read_bytes())
        at = data.index(b"PK\x01\x02") + 8
        data[at : at + 2] = flag.to_bytes(2, "little")
        path.write_bytes(bytes(data))
    return path


def _bomb(folder: Path) -> Path:
    path = folder / "bars.zip"
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("bars.csv", "w") as member,
    ):
        for _ in range(64):
            member.write(_LINE * 2048)  # 7.6 MB that deflate ~340x, as the 300x
    return path


def _bytes(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _truncated_zip(folder: Path) -> Path:
    whole = _zip(folder, {"bars.csv": _LINE * 5000}, name="whole.zip")
    return _bytes(folder, "bars.zip", whole.read_bytes()[: whole.stat().st_size // 2])


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "bars.csv")
    return folder / "bars.csv"


def _parquet(folder: Path, stamps: list[str | None]) -> Path:
    import pandas as pd

    path = folder / "bars.parquet"
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime(stamps).as_unit("s"),
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.5,
            "volume": 3.0,
        }
    )
    frame.to_parquet(path)
    return path


def _loop(folder: Path) -> Path:
    (folder / "bars.csv").symlink_to(folder / "bars.csv")
    return folder / "bars.csv"


def _folder(folder: Path) -> Path:
    (folder / "dumps").mkdir()
    (folder / "dumps" / "a.csv").write_bytes(_LINE)
    return folder / "dumps"


# (id, input builder, extra arguments, exit code, message pattern, also as a subprocess)
IMPORT_CASES = [
    # issue 12 item 6: timestamps outside pandas' nanosecond range
    (
        "iso-9999",
        lambda f: _csv(f, "2025-01-01", "9999-12-31"),
        (),
        11,
        r"bars.csv: 1 timestamp\(s\) outside the supported range 1677-09-21 \.\. 2262-04-11 "
        r"\(pandas' nanosecond timestamps\): row 2 \('9999-12-31'\)",
        REAL,
    ),
    (
        "iso-1600",
        lambda f: _csv(f, "1600-01-01", "2025-01-01"),
        (),
        11,
        r"bars.csv: 1 timestamp\(s\) outside the supported range .*row 1 \('1600-01-01'\)",
        "",
    ),
    (
        "epoch-year-5138",
        lambda f: _csv(f, T0, "1e20"),
        (),
        11,
        r"bars.csv: 1 timestamp\(s\) outside the supported range .*row 2 \(1e\+20\)",
        "",
    ),
    # issue 12 item 8: non-finite and huge timestamps, broken zips
    (
        "inf",
        lambda f: _csv(f, T0, "inf"),
        (),
        11,
        r"bars.csv: 1 timestamp\(s\) that are not finite numbers: row 2 \(inf\)",
        REAL,
    ),
    (
        "minus-inf",
        lambda f: _csv(f, "-inf", T0),
        (),
        11,
        r"bars.csv: 1 timestamp\(s\) that are not finite numbers: row 1 \(-inf\)",
        "",
    ),
    (
        "nan",
        lambda f: _csv(f, T0, "nan", T0 + MIN),
        (),
        11,
        r"bars.csv: 1 unparseable timestamp\(s\) among epoch numbers: row 2 \('nan'\)",
        "",
    ),
    (
        "huge",
        lambda f: _csv(f, T0, "1e300"),
        (),
        11,
        r"bars.csv: 1 timestamp\(s\) outside the supported range .*row 2 \(1e\+300\)",
        "",
    ),
    (
        "parquet-9999",
        lambda f: _parquet(f, ["2025-01-01", "9999-12-31"]),
        (),
        11,
        r"bars.parquet: 1 timestamp\(s\) outside the supported range .*row 2 \(9999-12-31",
        "",
    ),
    (
        "parquet-missing-time",
        lambda f: _parquet(f, ["2025-01-01", None]),
        (),
        11,
        r"bars.parquet: 1 missing timestamp\(s\) in 'time': row 2 \(NaT\)",
        "",
    ),
    (
        "zip-0-byte",
        lambda f: _bytes(f, "bars.zip", b""),
        (),
        11,
        r"bars.zip: not a readable zip archive: File is not a zip file",
        REAL,
    ),
    (
        "zip-noise",
        lambda f: _bytes(f, "bars.zip", os.urandom(2048)),
        (),
        11,
        r"bars.zip: not a readable zip archive",
        "",
    ),
    ("zip-truncated", _truncated_zip, (), 11, r"bars.zip: not a readable zip archive", ""),
    # issue 12 item 7: nothing to import, a folder, and (never hang) a FIFO
    (
        "header-only",
        _csv,
        (),
        11,
        r"bars.csv: no candle rows \(only a header\?\); nothing was written",
        REAL,
    ),
    (
        "empty-file",
        lambda f: _bytes(f, "bars.csv", b""),
        (),
        11,
        r"bars.csv: no candle rows \(the file is empty\)",
        "",
    ),
    (
        "header-only-zip",
        lambda f: _zip(f, {"bars.csv": b"ts,open,high,low,close,volume\n"}),
        (),
        11,
        r"bars.zip: no candle rows",
        "",
    ),
    ("directory", _folder, (), 11, r"dumps: is a directory, not a candle file", REAL),
    ("fifo", _fifo, (), 11, r"bars.csv: not a regular file \(a FIFO, device or socket\)", REAL),
    (
        "symlink-loop",
        _loop,
        (),
        11,
        r"bars.csv: cannot read: Too many levels of symbolic links",
        "",
    ),
    (
        "binary-garbage",
        lambda f: _bytes(f, "bars.csv", b"ts,open\n\xff\xfe\x00\x9c" * 50),
        (),
        11,
        r"bars.csv: cannot read CSV: 'utf-8' codec can't decode",
        "",
    ),
    # issue 12 item 9: zip limits and layouts
    (
        "zip-bomb",
        _bomb,
        (),
        11,
        r"bars.zip: member 'bars.csv' expands [\d,]+x \([\d,]+ -> 7,602,176 bytes\), over the "
        r"limit of 100x",
        REAL,
    ),
    (
        "zip-two-members",
        lambda f: _zip(f, {"a.csv": _LINE, "b.csv": _LINE}),
        (),
        11,
        r"bars.zip: a zip must hold exactly one CSV file, this one holds 2: 'a.csv', 'b.csv'",
        "",
    ),
    (
        "zip-folder-member",
        lambda f: _zip(f, {"dumps/": b""}),
        (),
        11,
        r"bars.zip: member 'dumps/' is a folder, not a CSV file",
        "",
    ),
    (
        "zip-traversal",
        lambda f: _zip(f, {"../../bars.csv": _LINE}),
        (),
        11,
        r"bars.zip: member '../../bars.csv' has an absolute or '..' path",
        "",
    ),
    (
        "zip-absolute",
        lambda f: _zip(f, {"/tmp/bars.csv": _LINE}),
        (),
        11,
        r"bars.zip: member '/tmp/bars.csv' has an absolute or '..' path",
        "",
    ),
    (
        "gzip",
        lambda f: _bytes(f, "bars.csv.gz", __import__("gzip").compress(_LINE * 10)),
        (),
        11,
        r"bars.csv.gz: .gz files are not read \(only .zip archives, whose sizes are checked "
        r"first\); decompress it first",
        "",
    ),
    (
        "zip-encrypted",
        lambda f: _zip(f, {"bars.csv": _LINE}, flag=0x1),
        (),
        11,
        r"bars.zip: member 'bars.csv' is encrypted",
        "",
    ),
    # issue 13 item 6: the timeframe the bars contradict, or that cannot be inferred
    (
        "timeframe-contradicted",
        lambda f: BACKTESTING_DATA / "GOOG.csv",
        ("--timeframe", "1m"),
        11,
        r"GOOG.csv: --timeframe 1m contradicts the data: the median spacing of its bars is "
        r"1d",
        REAL,
    ),
    (
        "timeframe-unknown",
        lambda f: _csv(f, *(T0 + i * 2 * MIN for i in range(5))),
        (),
        11,
        r"bars.csv: the median spacing of the bars is 2m, which is no known timeframe",
        "",
    ),
    (
        "timeframe-single-bar",
        lambda f: _csv(f, T0),
        (),
        11,
        r"bars.csv: cannot infer the timeframe from a single bar; pass --timeframe",
        "",
    ),
    # issue 11 item 1: options
    (
        "commit-without-tracking",
        lambda f: _csv(f, T0, T0 + MIN),
        ("--commit", "--no-track"),
        2,
        r"--commit .* cannot be combined with --no-track",
        "",
    ),
    (
        "wait-nan",
        lambda f: _csv(f, T0, T0 + MIN),
        ("--wait", "nan"),
        2,
        r"--wait must be a number of seconds >= 0, got nan",
        "",
    ),
]


@pytest.fixture
def stored(tmp_repo, tmp_path):
    """A workspace holding the dataset generic X 1m (tracked and committed), and a function
    that captures everything an import could change."""
    source = tmp_path / "base.csv"
    source.write_text(binance_lines(candles(10)))
    CandleStore(Workspace.at(tmp_repo)).import_files([source], market="generic", symbol="X")
    tmp_repo.git("add", "data.dvc", ".gitignore")
    tmp_repo.git("commit", "-q", "-m", "candles")

    def state():
        files = {
            p.relative_to(tmp_repo).as_posix(): p.read_bytes()
            for p in sorted((tmp_repo / "data").rglob("*"))
            if p.is_file()
        }
        index = sorted(
            (r.path, r.sha256) for r in CandleStore(Workspace.at(tmp_repo)).store.index.query()
        )
        return (
            files,
            (tmp_repo / "data.dvc").read_bytes(),
            (tmp_repo / ".gitignore").read_bytes(),
            index,
            tmp_repo.git("rev-parse", "HEAD").stdout,
        )

    return state


def _inputs(tmp_path: Path, build) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir(exist_ok=True)
    return build(folder)


@pytest.mark.parametrize(
    ("build", "extra", "code", "pattern", "real"),
    [case[1:] for case in IMPORT_CASES],
    ids=[case[0] for case in IMPORT_CASES],
)
def test_data_import_refuses_hostile_input(
    stored, tmp_repo, tmp_path, build, extra, code, pattern, real
):
    before = stored()
    path = _inputs(tmp_path, build)
    args = ("data", "import", str(path), *_IMPORT, *extra)
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert len(re.findall(pattern, result.stderr)) == 1, result.stderr
    assert stored() == before
    if real:
        proc = ita_vc_subprocess(*args, cwd=tmp_repo)
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stderr
        assert len(re.findall(pattern, proc.stderr)) == 1, proc.stderr
        assert stored() == before


def test_a_member_over_the_size_limit_is_refused(stored, tmp_path, monkeypatch):
    from ita_vc.candles import sources

    before = stored()
    path = _zip(tmp_path, {"bars.csv": _LINE * 100})
    monkeypatch.setattr(sources, "MAX_MEMBER_BYTES", 4096)
    result = invoke("data", "import", str(path), *_IMPORT)
    assert result.exit_code == 11
    assert (
        "bars.zip: member 'bars.csv' declares 5,800 bytes uncompressed, over the limit of "
        "4,096 bytes; nothing was read"
    ) in result.stderr
    assert stored() == before


def test_data_rm_refuses_what_is_not_stored(stored, tmp_repo):
    before = stored()
    for args, code, message in [
        (
            ("--symbol", "NOPE", "--timeframe", "1m"),
            11,
            "no dataset generic NOPE 1m: data/candles/generic/NOPE/1m.parquet does not exist",
        ),
        (("--symbol", "X", "--timeframe", "1h"), 11, "no dataset generic X 1h"),
        (("--symbol", "X", "--timeframe", "7m"), 11, "unknown timeframe '7m'"),
        (("--symbol", "../X", "--timeframe", "1m"), 11, "invalid symbol '../X'"),
        (("--symbol", "X", "--timeframe", "1m", "--wait", "-1"), 2, "--wait must be"),
    ]:
        result = invoke("data", "rm", "--market", "generic", *args)
        assert result.exit_code == code, result.output
        assert message in result.stderr
        assert stored() == before
    proc = ita_vc_subprocess(
        "data", "rm", "--market", "generic", "--symbol", "NOPE", "--timeframe", "1m", cwd=tmp_repo
    )
    assert proc.returncode == 11 and "no dataset generic NOPE 1m" in proc.stderr
    assert stored() == before


# -- ita-vc backtest run: hostile candle files and output folders ------------------------------
_RULE = (
    "setup_id: mine\nversion: '2.3'\nindicators:\n  - {name: rsi, params: {window: 14}}\n"
    "targets: {tp_pct: 1.0, sl_pct: 0.5}\n"
)


def _good_candles(folder: Path) -> Path:
    path = folder / "good.csv"
    path.write_text(binance_lines(candles(200)))
    return path


BACKTEST_CASES = [
    (
        "zip-0-byte",
        lambda f: _bytes(f, "bars.zip", b""),
        lambda f: f / "out",
        11,
        "bars.zip: not a readable zip archive",
        REAL,
    ),
    (
        "inf-timestamp",
        lambda f: _csv(f, T0, "inf"),
        lambda f: f / "out",
        11,
        "bars.csv: 1 timestamp(s) that are not finite numbers: row 2 (inf)",
        "",
    ),
    (
        "year-9999",
        lambda f: _csv(f, "2025-01-01", "9999-12-31"),
        lambda f: f / "out",
        11,
        "row 2 ('9999-12-31')",
        "",
    ),
    ("zip-bomb", _bomb, lambda f: f / "out", 11, "over the limit of 100x", ""),
    (
        "out-dev-null",
        _good_candles,
        lambda f: Path("/dev/null"),
        9,
        "/dev/null: is not a folder: --out names the folder the outputs are written into",
        REAL,
    ),
    (
        "out-is-a-file",
        _good_candles,
        lambda f: _bytes(f, "taken", b"x"),
        9,
        "taken: is not a folder",
        "",
    ),
    (
        "out-below-a-file",
        _good_candles,
        lambda f: _bytes(f, "taken", b"x") / "sub",
        9,
        "taken/sub: cannot create the output folder:",
        "",
    ),
    (
        "out-unwritable",
        _good_candles,
        lambda f: Path("/proc/self/ita-vc-out"),
        9,
        "/proc/self/ita-vc-out: cannot write the output folder: /proc/self is not writable",
        "",
    ),
]


@pytest.mark.parametrize(
    ("build", "out", "code", "message", "real"),
    [case[1:] for case in BACKTEST_CASES],
    ids=[case[0] for case in BACKTEST_CASES],
)
def test_backtest_run_refuses_hostile_input(tmp_path, build, out, code, message, real):
    folder = tmp_path / "inputs"
    folder.mkdir()
    candles_path, target = build(folder), out(folder)
    rule = folder / "rule.yaml"
    rule.write_text(_RULE)
    existed = os.path.lexists(target)
    args = (
        "backtest",
        "run",
        "--candles",
        str(candles_path),
        "--rule",
        str(rule),
        "--out",
        str(target),
    )
    result = invoke(*args, cwd=tmp_path)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert os.path.lexists(target) == existed  # no output folder was made
    if real:
        proc = ita_vc_subprocess(*args, cwd=tmp_path)
        assert proc.returncode == code, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr


def test_the_output_folder_replaced_by_a_file_mid_run(tmp_path):
    from ita_vc.errors import PersistentStoreError
    from ita_vc.pipeline.outputs import DirSink

    sink = DirSink(tmp_path / "out")
    sink.json({"a": 1}, "summary.json")
    import shutil

    shutil.rmtree(tmp_path / "out")
    (tmp_path / "out").write_text("now a file")
    with pytest.raises(PersistentStoreError, match=r"out/metrics.json: write failed: "):
        sink.json({"b": 2}, "metrics.json")
    with pytest.raises(PersistentStoreError, match=r"out/equity.png: write failed: "):
        sink.binary(b"png", "equity.png")
    assert (tmp_path / "out").read_text() == "now a file"


def test_backtest_run_still_works_on_good_candles(tmp_path):
    candles_path = _good_candles(tmp_path)
    rule = tmp_path / "rule.yaml"
    rule.write_text(_RULE)
    result = invoke(
        "backtest",
        "run",
        "--candles",
        str(candles_path),
        "--rule",
        str(rule),
        "--out",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "summary.json").is_file()
