"""The window and the watermark (W1-W3), without a flow run: compute_window and parse_since.

W3 is split by one line only: what needs no flow run is here; the refusals a flow run makes
before it opens anything, or against the ledger's watermark, are in
tests/flow/test_flow_window_refusals.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from exigo_sync.window import FULL_LOAD_START, WindowRefused, compute_window, parse_since

NOW = datetime(2026, 1, 5, 12, 0)
WM = datetime(2026, 1, 5, 10, 0)


def _window(**kw: object):  # type: ignore[no-untyped-def]
    args = dict(
        since=None, watermark=None, source_now=NOW, overlap=timedelta(minutes=10),
        initial_start=None, initial_lookback=None,
    )  # fmt: skip
    args.update(kw)
    return compute_window(**args)  # type: ignore[arg-type]


def test_w1_full_load_first_then_watermark_minus_overlap() -> None:
    # No merged batch: everything (a start before any data), unless the operator configured a
    # start or the vendor's lookback, which leaves the warehouse partial.
    assert (_window().start, _window().kind) == (FULL_LOAD_START, "full")
    w = _window(initial_start=datetime(2025, 1, 1))
    assert (w.start, w.kind) == (datetime(2025, 1, 1), "initial")
    w = _window(initial_lookback=timedelta(hours=24))
    assert (w.start, w.kind) == (NOW - timedelta(hours=24), "initial")
    w = _window(watermark=WM)
    assert (w.start, w.kind) == (WM - timedelta(minutes=10), "watermark")
    # A replay from before any data is a full load too: it makes a partial warehouse complete.
    w = _window(since=FULL_LOAD_START, watermark=WM)
    assert (w.start, w.kind) == (FULL_LOAD_START, "full")


def test_w2_since_replays_before_the_watermark() -> None:
    w = _window(since=datetime(2026, 1, 1), watermark=WM)
    assert (w.start, w.kind) == (datetime(2026, 1, 1), "since")


def test_w3_no_since_means_resume() -> None:
    assert parse_since("") is None
    assert parse_since(None) is None


@pytest.mark.parametrize("bad", ["not-a-date", "2026-13-01", "2026-01-05T10:00+02:00"])
def test_w3_parse_since_refuses_what_it_cannot_read(bad: str) -> None:
    with pytest.raises(WindowRefused, match="refused"):
        parse_since(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1/1/2017", datetime(2017, 1, 1)),  # the vendor note's own example
        ("2017-01-01", datetime(2017, 1, 1)),
        ("2026-01-05T08:30:00", datetime(2026, 1, 5, 8, 30)),
    ],
)
def test_w2_since_accepts_the_vendor_and_iso_formats(text: str, expected: datetime) -> None:
    assert parse_since(text) == expected


def test_w3_future_and_after_watermark_refused_unless_gap_allowed() -> None:
    with pytest.raises(WindowRefused, match="future"):
        parse_since("2999-01-01")
    assert parse_since("2999-01-01", allow_gap=True) == datetime(2999, 1, 1)
    with pytest.raises(WindowRefused, match="after the watermark"):
        _window(since=WM + timedelta(minutes=1), watermark=WM)
    with pytest.raises(WindowRefused, match="after the source clock"):
        _window(since=NOW + timedelta(hours=1), watermark=WM)
    assert _window(since=WM + timedelta(minutes=1), watermark=WM, allow_gap=True).kind == "gap"


def test_w3_refusals_name_the_flag_and_the_flow_parameter_that_override_them() -> None:
    """The CLI flag is --allow-gap, the deployment parameter allow_gap: each refusal names
    both, where each applies."""
    refusals = []
    for refuse in (
        lambda: parse_since("2999-01-01"),
        lambda: _window(since=WM + timedelta(minutes=1), watermark=WM),
        lambda: _window(since=NOW + timedelta(hours=1), watermark=WM),
    ):
        with pytest.raises(WindowRefused) as refused:
            refuse()
        refusals.append(str(refused.value))
    for message in refusals:
        assert "pass --allow-gap to `exigo-sync run`, or the flow parameter allow_gap=true" in (
            message
        )
