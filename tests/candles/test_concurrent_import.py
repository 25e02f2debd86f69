"""Concurrent `ita-vc data import` with real processes (issue 11 item 1): nothing is lost.

The races are made deterministic without sleeps: importers wait at a barrier (a start file) so
they reach the lock together; a holder is stopped *inside* the locked step by a wrapper that
monkeypatches ``merge_candles`` (called only with the lock held) to wait for a release file; a
waiter reports, from inside ``fcntl.flock``, that it found the workspace lock taken.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from ita_vc.candles import CandleStore
from ita_vc.workspace import Workspace
from tests.candles.conftest import MIN, T0, binance_lines, candles
from tests.helpers import VENV_BIN, invoke, ita_vc_subprocess

DAY = 1440
DATASET = "data/candles/generic/C/1m.parquet"
_IMPORT = ("--market", "generic", "--symbol", "C")

_AT_BARRIER = """
import os, sys, time
ready, start = sys.argv[1], sys.argv[2]
import pandas, dvc.repo, ita_vc.candles.dataset, ita_vc.cli  # loaded before the barrier
open(ready, "w").close()
deadline = time.monotonic() + 300
while not os.path.exists(start):
    if time.monotonic() > deadline:
        sys.exit("the barrier never opened")
    time.sleep(0.002)
from ita_vc.cli import main
sys.argv = ["ita-vc", *sys.argv[3:]]
main()
"""

_HOLD_INSIDE_THE_LOCK = """
import os, sys, time
import ita_vc.candles.dataset as dataset
held, release = sys.argv[1], sys.argv[2]
real_merge = dataset.merge_candles
def merge(*args, **kwargs):  # import_files calls it with the workspace lock held
    open(held, "w").close()
    deadline = time.monotonic() + 300
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.01)
    return real_merge(*args, **kwargs)
dataset.merge_candles = merge
from ita_vc.cli import main
sys.argv = ["ita-vc", *sys.argv[3:]]
main()
"""

_SAY_WHEN_BLOCKED = """
import fcntl, os, sys
waiting = sys.argv[1]
real_flock = fcntl.flock
def flock(fd, operation):
    try:
        return real_flock(fd, operation)
    except BlockingIOError:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("/workspace.lock"):
            open(waiting, "w").close()
        raise
fcntl.flock = flock
from ita_vc.cli import main
sys.argv = ["ita-vc", *sys.argv[2:]]
main()
"""


def _days(folder, count):
    paths = []
    for day in range(count):
        path = folder / f"day{day}.csv"
        path.write_text(binance_lines(candles(DAY, start=T0 + day * DAY * MIN, seed=day)))
        paths.append(path)
    return paths


def _python(script, *args, cwd):
    return subprocess.Popen(
        [str(VENV_BIN / "python"), "-c", script, *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _await_file(path, *procs, timeout=300):
    """Wait for ``path`` to appear (a process's signal); fail early if a process died."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        for proc in procs:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"process exited {proc.returncode} before {path.name}:\n{out}{err}")
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


def _finish(proc):
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out + err


def _stored(repo):
    return CandleStore(Workspace.at(repo)).load("generic", "C", "1m")


@pytest.mark.parametrize(
    ("importers", "flags"),
    [
        (2, ("--no-track",)),  # the recipe: day 0, then days 1 and 2 at once: 4,320 rows
        (3, ("--commit",)),  # three importers that track and commit: 5,760 rows, 3 commits
    ],
)
def test_importers_started_together_lose_nothing(tmp_repo, tmp_path, importers, flags):
    days = _days(tmp_path, importers + 1)
    first = invoke("data", "import", str(days[0]), *_IMPORT, "--no-track")
    assert first.exit_code == 0, first.output
    head = tmp_repo.git("rev-parse", "HEAD").stdout.strip()
    numbers = range(1, importers + 1)
    procs = [
        _python(
            _AT_BARRIER,
            tmp_path / f"ready{n}",
            tmp_path / "start",
            "data",
            "import",
            days[n],
            *_IMPORT,
            "--wait",
            "120",
            *flags,
            cwd=tmp_repo,
        )
        for n in numbers
    ]
    for n, proc in zip(numbers, procs, strict=True):
        _await_file(tmp_path / f"ready{n}", proc)
    (tmp_path / "start").touch()  # the barrier opens: all of them race for the dataset
    results = [_finish(proc) for proc in procs]
    assert [code for code, _ in results] == [0] * importers, results
    stored = _stored(tmp_repo)
    assert len(stored) == (importers + 1) * DAY
    assert stored["ts_utc"].tolist() == list(range(T0, T0 + (importers + 1) * DAY * MIN, MIN))
    subjects = [
        s for s in tmp_repo.git("log", "--format=%s", f"{head}..HEAD").stdout.split("\n") if s
    ]
    if "--commit" not in flags:
        assert subjects == []
        assert not (tmp_repo / "data.dvc").exists()
        return
    # one commit per importer, each holding only what tracking changed
    assert subjects == ["ita-vc data import: generic C 1m (+1,440 rows)"] * importers
    for back in range(importers):
        files = set(tmp_repo.git("show", "--name-only", "--format=", f"HEAD~{back}").stdout.split())
        assert files <= {"data.dvc", ".gitignore"} and "data.dvc" in files
    assert tmp_repo.git("status", "--porcelain", "--", "data.dvc", ".gitignore").stdout == ""
    assert "up to date" in tmp_repo.dvc("status", "data.dvc").stdout


def test_an_import_holding_the_lock_refuses_a_second_one_then_lets_a_waiter_in(
    tmp_repo,
    tmp_path,
):
    days = _days(tmp_path, 3)
    first = invoke("data", "import", str(days[0]), *_IMPORT, "--commit")
    assert first.exit_code == 0, first.output
    held, release, waiting = tmp_path / "held", tmp_path / "release", tmp_path / "waiting"
    holder = _python(
        _HOLD_INSIDE_THE_LOCK, held, release, "data", "import", days[1], *_IMPORT, cwd=tmp_repo
    )
    try:
        _await_file(held, holder)
        before = {p: (tmp_repo / p).read_bytes() for p in (DATASET, "data.dvc")}
        refused = invoke("data", "import", str(days[2]), *_IMPORT)
        assert refused.exit_code == 10, refused.output
        assert f"(held by pid {holder.pid}: data import generic C 1m)" in refused.stderr
        assert "--wait SECONDS" in refused.stderr
        real = ita_vc_subprocess("data", "import", str(days[2]), *_IMPORT, cwd=tmp_repo)
        assert real.returncode == 10, real.stderr
        assert f"held by pid {holder.pid}: data import generic C 1m" in real.stderr
        removal = invoke("data", "rm", *_IMPORT, "--timeframe", "1m")
        assert removal.exit_code == 10, removal.output
        assert {p: (tmp_repo / p).read_bytes() for p in before} == before
        waiter = _python(
            _SAY_WHEN_BLOCKED,
            waiting,
            "data",
            "import",
            days[2],
            *_IMPORT,
            "--wait",
            "120",
            "--commit",
            cwd=tmp_repo,
        )
        _await_file(waiting, waiter)  # it found the lock taken and is waiting
        assert holder.poll() is None and waiter.poll() is None
    finally:
        release.touch()
    assert _finish(holder)[0] == 0
    code, output = _finish(waiter)
    assert code == 0, output
    assert "committed data.dvc" in output
    stored = _stored(tmp_repo)
    assert len(stored) == 3 * DAY and stored["ts_utc"].is_unique
    assert tmp_repo.git("status", "--porcelain", "--", "data.dvc").stdout == ""
