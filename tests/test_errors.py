from __future__ import annotations

import ita_vc
from ita_vc import errors


def test_exit_codes_are_the_documented_contract():
    assert {
        cls.__name__: cls.exit_code
        for cls in (
            errors.ItaVcError,
            errors.RuleValidationError,
            errors.NotInitializedError,
            errors.IntegrityError,
            errors.RetentionRefusedError,
            errors.ConfigError,
            errors.PersistentStoreError,
            errors.IndexCorruptError,
            errors.VcsError,
            errors.WorkspaceLockedError,
            errors.DataValidationError,
            errors.UsageError,
            errors.DirtyWorkspaceError,
            errors.RemoteError,
            errors.JobStoreError,
        )
    } == {
        "ItaVcError": 1,
        "RuleValidationError": 4,
        "NotInitializedError": 5,
        "IntegrityError": 6,
        "RetentionRefusedError": 7,
        "ConfigError": 8,
        "PersistentStoreError": 9,
        "IndexCorruptError": 9,
        "VcsError": 1,
        "WorkspaceLockedError": 10,
        "DataValidationError": 11,
        "UsageError": 2,
        "DirtyWorkspaceError": 12,
        "RemoteError": 13,
        "JobStoreError": 14,
    }
    assert (errors.EXIT_USAGE, errors.EXIT_UNEXPECTED, errors.EXIT_INTERRUPTED) == (2, 3, 130)


def test_every_error_is_an_ita_vc_error():
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, errors.ItaVcError)


def test_store_error_carries_the_path():
    exc = errors.PersistentStoreError("boom", path="results/x.json")
    assert str(exc) == "results/x.json: boom" and exc.path == "results/x.json"


def test_public_api_is_explicit_and_importable():
    for name in ita_vc.__all__:
        assert getattr(ita_vc, name) is not None
    assert sorted(dir(ita_vc)) == sorted(ita_vc.__all__)
    import pytest

    with pytest.raises(AttributeError):
        ita_vc.not_a_name  # noqa: B018
