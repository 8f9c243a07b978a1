"""The settings (exigo_sync.settings): a value that would misconfigure a run is refused, naming
the setting."""

from __future__ import annotations

import pytest

from exigo_sync.settings import Settings


@pytest.mark.parametrize("bad", ["abc", "0", "-1"])
def test_a_bad_dbt_thread_count_is_refused_naming_the_setting(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The profile would render "abc" as 0 threads; the settings refuse it first."""
    monkeypatch.setenv("EXIGO_SYNC_DBT_THREADS", bad)
    with pytest.raises(ValueError, match="dbt_threads"):
        Settings()
