"""``ita-vc cache ...``: the feature cache (docs/cache.md): what it holds, and emptying it."""

from __future__ import annotations

import typer

app = typer.Typer(help="Inspect or empty the feature cache.", no_args_is_help=True)


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


@app.command("info")
def info_command() -> None:
    """Entries, bytes and the budget of the feature cache."""
    from ita_vc.cli.console import out
    from ita_vc.config import load_config
    from ita_vc.features import FeatureCache, cache_settings
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    settings = cache_settings(workspace.root, even_disabled=True)
    assert settings is not None  # noqa: S101 - even_disabled always gives settings
    info = FeatureCache(settings).info()
    enabled = load_config(workspace.root).cache.enabled
    out().print(
        f"Feature cache {'enabled' if enabled else 'disabled (cache.enabled: false)'}: "
        f"{info.entries} entr{'y' if info.entries == 1 else 'ies'}, {_mib(info.bytes)} of "
        f"{_mib(info.max_bytes)} (cache.max_bytes) in {info.root}",
        markup=False,
    )
    if info.files_without_row:
        out().print(
            f"{info.files_without_row} file(s) the index does not list: run "
            "`ita-vc index rebuild` to register them, or `ita-vc cache clear`",
            markup=False,
        )


@app.command("clear")
def clear_command() -> None:
    """Delete every entry of the feature cache (it is rebuilt as grids run)."""
    from ita_vc.cli.console import out
    from ita_vc.features import FeatureCache, cache_settings
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    settings = cache_settings(workspace.root, even_disabled=True)
    assert settings is not None  # noqa: S101 - even_disabled always gives settings
    removed = FeatureCache(settings).clear()
    out().print(
        f"Feature cache cleared: {removed} entr{'y' if removed == 1 else 'ies'}", markup=False
    )
