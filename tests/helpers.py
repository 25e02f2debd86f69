"""Shared test helpers: a workspace path with generators, the CLI runner, real subprocesses."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO_ROOT = Path(__file__).resolve().parents[1]
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
MIN = 60_000
VENV_BIN = Path(sys.executable).parent


class TmpRepo(type(Path())):  # type: ignore[misc]
    """A temporary git + DVC + ita-vc workspace (a ``Path`` with helpers, as dvc's TmpDir)."""

    def gen(self, files: dict[str, str | bytes]) -> list[Path]:
        """Write files (relative path -> text or bytes); returns their paths."""
        made = []
        for rel, content in files.items():
            path = self / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
            made.append(path)
        return made

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a real ``git`` command in the repo."""
        return run(["git", *args], cwd=self, check=check)

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the real ``dvc`` CLI of this venv in the repo."""
        return run([str(VENV_BIN / "dvc"), *args], cwd=self, check=check)

    def git_gen(self, files: dict[str, str | bytes], message: str = "add files") -> list[Path]:
        """Write files, ``git add`` and commit them."""
        made = self.gen(files)
        self.git("add", "--", *files)
        self.git("commit", "-q", "-m", message)
        return made

    def dvc_gen(self, files: dict[str, str | bytes], commit: str | None = None) -> list[Path]:
        """Write files, ``dvc add`` them and optionally commit the .dvc files."""
        made = self.gen(files)
        self.dvc("add", "-q", *files)
        if commit:
            self.git("add", "-A")
            self.git("commit", "-q", "-m", commit)
        return made


def run(
    cmd: list[str],
    cwd: Path | str,
    *,
    check: bool = True,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a real subprocess with the test environment; raise with its output on failure."""
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        input=input_text,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{cmd} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


@dataclass
class CliResult:
    """What one ``ita-vc`` invocation through :func:`ita_vc.cli.main` produced."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke(*args: str, cwd: Path | str | None = None) -> CliResult:
    """Run ``ita-vc ARGS`` in-process through the real error boundary (``main``)."""
    from ita_vc.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with contextlib.ExitStack() as stack:
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code
    if code is None:
        code = 0
    return CliResult(int(code), out.getvalue(), err.getvalue())


def ita_vc_subprocess(
    *args: str,
    cwd: Path | str,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``ita-vc`` console script as a real subprocess."""
    return run([str(VENV_BIN / "ita-vc"), *args], cwd=cwd, check=check)


def make_pipeline_repo(repo: TmpRepo, *, days: int = 12, seed: int = 5) -> TmpRepo:
    """Give an ``ita-vc init`` workspace sample candles, the example rule and short-range
    params, all committed: ready for ``dvc repro`` / ``ita-vc run``."""
    from ita_vc.candles import CandleStore
    from ita_vc.candles.sample import SampleSpec, generate_candles
    from ita_vc.rules import RuleRegistry
    from ita_vc.workspace import Workspace

    workspace = Workspace.at(repo)
    spec = SampleSpec(
        "binance-spot", "BTCUSDT", 1_735_689_600_000, days, 94_000.0, 0.55, 0.01, 12.0, seed
    )
    export = repo.parent / f"btc-{seed}.parquet"
    generate_candles(spec).drop(columns="gap_flag").to_parquet(export)
    CandleStore(workspace).import_files([export], market="binance-spot", symbol="BTCUSDT")
    RuleRegistry(workspace).new("example_ma_cross", author="t")
    params = (repo / "params.yaml").read_text()
    params = params.replace('start: "2025-01-10"', 'start: "2025-01-04"').replace(
        'end: "2025-03-01"', 'end: "2025-01-12"'
    )
    # the validation suite's settings for 8 days of 1h bars (the template's need more data)
    params = params.replace("permutation: {n: 100}", "permutation: {n: 20}")
    params = params.replace("block_size: auto", "block_size: 2")
    params = params.replace("n: 500", "n: 50")
    params = params.replace(
        "wfo: {windows: 4, in_sample_ratio: 3,", "wfo: {windows: 2, in_sample_ratio: 2,"
    )
    params = params.replace("partitions: 8,", "partitions: 4,")
    (repo / "params.yaml").write_text(params)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "data and rule")
    return repo


@contextlib.contextmanager
def lock_held_elsewhere(workspace: Any, timeout: float = 10) -> Iterator[None]:
    """Hold ``workspace.lock()`` in another thread for the duration of the block."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with workspace.lock():
            held.set()
            release.wait(timeout)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(timeout), "the other thread never got the lock"
        yield
    finally:
        release.set()
        thread.join()


def walk_candles(
    n: int, *, step: int = MIN, seed: int = 0, vol: float = 2e-3, spread: float = 0.05
) -> Any:
    """``n`` bars of a seeded log-normal walk from 100 (closes rounded to cents, each open the
    previous close, high/low ``spread`` outside the body, volume 1), from :data:`T0`."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, vol, n))), 2)
    open_ = np.r_[100.0, close[:-1]]
    return pd.DataFrame(
        {
            "ts_utc": T0 + np.arange(n, dtype=np.int64) * step,
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": np.ones(n),
        }
    )
