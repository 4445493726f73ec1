"""Dates and times: one accepted range (the year 1000 to the current clock plus
:data:`graphfusion.values.FUTURE_TOLERANCE`) and one reason for every value outside it, on
the single-value path (:func:`graphfusion.values.coerce`, :func:`~graphfusion.values.converter`)
and the column path (:func:`graphfusion.columnar.convert`), in loads, in live events and in the
behaviour features of a store that already holds a date in the future."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphfusion import Engine
from graphfusion.columnar import Evaluated, convert
from graphfusion.errors import ValidationError
from graphfusion.features.behaviour import behaviour_features
from graphfusion.ingest import load
from graphfusion.mapping import parse_mapping
from graphfusion.schema import Property, PropertyType
from graphfusion.store import EmbeddedStore
from graphfusion.table import Column
from graphfusion.values import (
    EARLIEST_TIME,
    FUTURE_TOLERANCE,
    coerce,
    converter,
    latest_time,
    refuse_future_times,
)

D = PropertyType("datetime")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except ValueError as exc:
        return "error", str(exc)


def _column(value: Any) -> tuple[str, Any]:
    """``value`` converted by the column path, as a column of itself and a good date (so the
    vectorised rules run, not only the single-value fallback)."""
    col = Column(arrow=pa.array([value, "2024-01-01"])) if type(value) is str else Column([value])
    arr, errors = convert(Evaluated(col), D)
    return ("error", errors[0]) if 0 in errors else ("ok", arr.to_pylist()[0])


def _paths(value: Any) -> list[tuple[str, Any]]:
    """What the column path, the converter and :func:`coerce` make of ``value``."""
    return [
        _column(value),
        _outcome(lambda: converter(D)(value)),
        _outcome(lambda: coerce(value, D)),
    ]


# ----------------------------------------------------------------------------- both paths


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00",  # .NET's DateTime.MinValue: a placeholder, not a date
        "0001-01-01",
        "0999-12-31T23:59:59",
        "0999-12-31T23:59:59+00:00",
        -62135596800,  # 0001-01-01 in Unix seconds
        dt.datetime(1, 1, 1),
        pd.Timestamp("0999-01-01"),
    ],
)
def test_a_date_before_the_year_1000_is_refused_alike_on_every_path(value: Any) -> None:
    """``0001-01-01T00:00:00`` loaded through the column path and the converter (Python's
    ``fromisoformat``) as the year 1, while :func:`coerce` (pandas) refused it as a text that
    "gives no day, or no year"; a number of Unix seconds or a datetime of the year 1 passed
    everywhere."""
    outcomes = _paths(value)
    assert outcomes[0] == outcomes[1] == outcomes[2], outcomes
    kind, reason = outcomes[0]
    assert kind == "error"
    assert "before the year 1000" in reason


def test_the_earliest_time_is_accepted_on_every_path() -> None:
    text = EARLIEST_TIME.isoformat()
    for value in (
        text,
        EARLIEST_TIME,
        int((EARLIEST_TIME - dt.datetime(1970, 1, 1)).total_seconds()),
    ):
        assert _paths(value) == [("ok", EARLIEST_TIME)] * 3, value


@pytest.mark.parametrize(
    "value",
    [
        "2024-W01-1",  # an ISO week date: fromisoformat reads it, pandas does not
        "2024W011",
        "2024-W01",
        "2024-01-01X00:00:00",  # any character between date and time
        "2024-01-01T00:00:00+02:00:30",  # an offset with seconds
    ],
)
def test_spellings_one_parser_alone_reads_are_refused_alike(value: str) -> None:
    """The converter took these (``fromisoformat`` reads week dates and any separator),
    :func:`coerce` refused them: a load and a check of the same value disagreed."""
    outcomes = _paths(value)
    assert outcomes[0] == outcomes[1] == outcomes[2], outcomes
    assert outcomes[0] == ("error", f"{value!r} is not a date or time")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-01T10:00:00Z", dt.datetime(2024, 1, 1, 10)),
        ("2024-01-01T10:00:00z", dt.datetime(2024, 1, 1, 10)),
        ("2024-01-01T10:00:00+02:00", dt.datetime(2024, 1, 1, 8)),
        ("2024-01-01T10:00:00.5", dt.datetime(2024, 1, 1, 10, 0, 0, 500000)),
        ("2024-01-01T10:00:00.123456", dt.datetime(2024, 1, 1, 10, 0, 0, 123456)),
        ("2024-01-01T10:00:00.1234", dt.datetime(2024, 1, 1, 10, 0, 0, 123400)),
        ("2024-01-01", dt.datetime(2024, 1, 1)),
        ("2024-01-01 10:00", dt.datetime(2024, 1, 1, 10)),
        (1_700_000_000, dt.datetime(2023, 11, 14, 22, 13, 20)),
        (1_700_000_000.5, dt.datetime(2023, 11, 14, 22, 13, 20, 500000)),
        (
            dt.datetime(2024, 1, 1, 10, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            dt.datetime(2024, 1, 1, 8),
        ),
    ],
)
def test_ordinary_dates_read_alike_on_every_path(value: Any, expected: dt.datetime) -> None:
    assert _paths(value) == [("ok", expected)] * 3


@pytest.mark.parametrize("value", ["2024-06-30T23:59:60", "2024-01-01T24:00:00", "2024-02-30"])
def test_impossible_times_are_refused_alike(value: str) -> None:
    """A leap second, hour 24 and 30 February are no times Python or the store can hold."""
    assert _paths(value) == [("error", f"{value!r} is not a date or time")] * 3


@pytest.mark.parametrize("value", [-99_999_999_999, -1e11 + 1, 10**11, 1.7e12, float("inf")])
def test_a_number_beyond_unix_seconds_says_so(value: float) -> None:
    """``-99999999999`` gave Python's own "year -1199 is out of range", which names no value
    and no unit."""
    outcomes = _paths(value)
    assert outcomes[0] == outcomes[1] == outcomes[2], outcomes
    assert outcomes[0][0] == "error"
    assert "Unix time in seconds" in outcomes[0][1] or "before the year 1000" in outcomes[0][1]
    assert "year -" not in outcomes[0][1]


def test_a_zone_that_takes_a_date_out_of_python_s_range_is_a_row_error(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    """``0001-01-01T00:00:00+01:00`` (the year 0 in UTC) raised an OverflowError from the
    converter, which stopped the whole load with a traceback."""
    for value in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"):
        outcomes = _paths(value)
        assert outcomes[0] == outcomes[1] == outcomes[2], outcomes
        assert outcomes[0][0] == "error"
    path = _write(tmp_path, "csv", [
        {"id": "p1", "created_at": "2024-01-01T00:00:00"},
        {"id": "p2", "created_at": "0001-01-01T00:00:00+01:00"},
        {"id": "p3", "created_at": "9999-12-31T23:30:00-01:00"},
    ])  # fmt: skip
    report = load(store, _products_mapping(store, "csv"), {"products": path})
    assert [r.line for r in report.rejected] == [3, 4]
    assert "before the year 1000" in report.rejected[0].reason
    assert store.counts().nodes["Product"] == 1


# ----------------------------------------------------------------------------- the future


def test_the_tolerance_is_a_day() -> None:
    assert dt.timedelta(days=1) == FUTURE_TOLERANCE
    assert abs(latest_time() - (_now() + FUTURE_TOLERANCE)) < dt.timedelta(minutes=5)


@pytest.mark.parametrize(
    "value",
    [
        "3000-01-01T00:00:00",
        "3000-01-01",
        "2999-12-31T23:00:00-05:00",
        32_503_680_000,  # 3000-01-01 in Unix seconds
        dt.datetime(3000, 1, 1),
        pd.Timestamp("3000-01-01"),
        np.datetime64("3000-01-01T00:00:00"),
    ],
)
def test_a_date_in_the_future_is_refused_alike_on_every_path(value: Any) -> None:
    """One event dated 3000 shifted the behaviour features' "last activity" of the whole
    shop; it was loaded without a word."""
    outcomes = _paths(value)
    assert outcomes[0] == outcomes[1] == outcomes[2], outcomes
    kind, reason = outcomes[0]
    assert kind == "error"
    assert "in the future" in reason and "1 day" in reason


def test_the_future_starts_a_day_after_the_clock() -> None:
    """Within the tolerance (a clock a little fast, another time zone) is accepted."""
    soon = (_now() + FUTURE_TOLERANCE - dt.timedelta(hours=1)).replace(microsecond=0)
    late = (_now() + FUTURE_TOLERANCE + dt.timedelta(hours=1)).replace(microsecond=0)
    assert _paths(soon.isoformat()) == [("ok", soon)] * 3
    assert all(kind == "error" for kind, _ in _paths(late.isoformat()))
    assert all(kind == "error" for kind, _ in _paths(late.isoformat(sep=" ")))


def test_a_range_property_of_dates_still_refuses_the_future() -> None:
    prop = Property("ts", D)
    arr, errors = convert(Evaluated(Column(arrow=pa.array(["2024-01-01", "3000-01-01"]))), prop)
    assert arr.to_pylist() == [dt.datetime(2024, 1, 1), None]
    assert "in the future" in errors[1]


def test_refuse_future_times_names_the_value() -> None:
    refuse_future_times(["2024-01-01", None, "", "not a date"], "ts")  # others: the load's
    with pytest.raises(ValidationError, match=r"ts .*3000-01-01.* is in the future"):
        refuse_future_times(["2024-01-01", "3000-01-01T00:00:00"], "ts")


# ----------------------------------------------------------------------------- loads


def _products_mapping(store: EmbeddedStore, fmt: str) -> Any:
    raw = {
        "name": "mini_products",
        "sources": {"products": {"description": "products"}},
        "tables": {"products": {"source": "products", "format": fmt}},
        "nodes": [
            {
                "label": "Product",
                "table": "products",
                "key": "id",
                "properties": {"created_at": "created_at"},
            }
        ],
    }
    return parse_mapping(raw, store.schema)


def _write(tmp_path: Path, fmt: str, rows: list[dict[str, Any]]) -> Path:
    frame = pd.DataFrame(rows)
    path = tmp_path / f"products.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True, date_format="iso")
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_load_rejects_future_and_ancient_dates_by_line(
    tmp_path: Path, store: EmbeddedStore, fmt: str
) -> None:
    """The good rows load; each bad one is a row error naming its source, line and field."""
    late = (_now() + dt.timedelta(days=3)).replace(microsecond=0).isoformat()
    rows = [
        {"id": "p1", "created_at": "2024-01-01T00:00:00"},
        {"id": "p2", "created_at": "3000-01-01T00:00:00"},
        {"id": "p3", "created_at": late},
        {"id": "p4", "created_at": "0001-01-01T00:00:00"},
        {"id": "p5", "created_at": "1997-09-20"},
    ]
    path = _write(tmp_path, fmt, rows)
    report = load(store, _products_mapping(store, fmt), {"products": path})
    found = {r.line: r for r in report.rejected}
    first = 2 if fmt == "csv" else 1  # a header line
    assert sorted(found) == [first + 1, first + 2, first + 3]
    for line in (first + 1, first + 2):
        assert "in the future" in found[line].reason
        assert found[line].field == "created_at"
        assert Path(found[line].source).name == path.name
    assert "before the year 1000" in found[first + 3].reason
    got = store.query("MATCH (p:Product) RETURN p.id AS id, p.created_at AS at ORDER BY id")
    assert [(r["id"], r["at"]) for r in got] == [  # a row with a bad value is not loaded
        ("p1", dt.datetime(2024, 1, 1)),
        ("p5", dt.datetime(1997, 9, 20)),
    ]


def test_a_parquet_load_rejects_future_timestamps(tmp_path: Path, store: EmbeddedStore) -> None:
    """Typed timestamps (and Unix seconds) of a Parquet file are checked as texts are."""
    path = tmp_path / "products.parquet"
    table = pa.table({
        "id": ["p1", "p2", "p3", "p4"],
        "created_at": pa.array([dt.datetime(2024, 1, 1), dt.datetime(3000, 1, 1),
                                dt.datetime(1998, 4, 1), dt.datetime(1, 1, 1)],
                               pa.timestamp("us")),
    })  # fmt: skip
    pq.write_table(table, path)
    report = load(store, _products_mapping(store, "parquet"), {"products": path})
    reasons = {r.line: r.reason for r in report.rejected}
    assert sorted(reasons) == [2, 4]
    assert "in the future" in reasons[2] and "before the year 1000" in reasons[4]
    got = store.query("MATCH (p:Product) RETURN p.id AS id ORDER BY id")
    assert [r["id"] for r in got] == ["p1", "p3"]


# ----------------------------------------------------------------------------- live events


@pytest.fixture
def engine(trained_store: Path, private_copy: Callable[[Path], Engine]) -> Engine:
    """A private copy of the prepared store."""
    return private_copy(trained_store)


def test_a_live_event_in_the_future_is_not_written(engine: Engine) -> None:
    """A live interaction dated 3000 was written, and moved every user's ``recency_days`` into
    a band 0.0002 wide; it is a rejected row now, and the others are written."""
    before = behaviour_features(engine.store, "User")["recency_days"]
    report = engine.add_interactions(
        pd.DataFrame({
            "user_id": ["u0001", "u0002"],
            "product_id": ["p0003", "p0004"],
            "type": ["VIEWED", "VIEWED"],
            "ts": ["3000-01-01T00:00:00", "2024-06-01T00:00:00"],
        })
    )  # fmt: skip
    assert [(r.line, r.field) for r in report.rejected] == [(1, "ts")]
    assert "in the future" in report.rejected[0].reason
    stored = engine.cypher("MATCH ()-[e:VIEWED]->() RETURN max(e.ts) AS last")
    assert stored["last"][0] < pd.Timestamp("2025-01-01")
    after = behaviour_features(engine.store, "User")["recency_days"]
    assert after.std() > 0.5  # standardized: not squeezed into a band
    assert abs(after.drop(["u0001", "u0002"]) - before.drop(["u0001", "u0002"])).max() < 0.2


def test_post_events_reports_dates_in_the_future_by_line(engine: Engine) -> None:
    """``POST /events``: a product created, or an interaction dated, in the year 3000 is a
    rejected row with its line; the other events are written."""
    from fastapi.testclient import TestClient

    from graphfusion.service import create_app

    client = TestClient(create_app(engine))
    body = {
        "products": [
            {"id": "live-1", "title": "Lamp", "category_id": "c07", "created_at": "3000-01-01"},
            {"id": "live-2", "title": "Mug", "category_id": "c07", "created_at": "2024-05-01"},
        ],
        "interactions": [
            {"user_id": "u0007", "product_id": "p0002", "type": "VIEWED", "ts": "2024-05-02"},
            {"user_id": "u0007", "product_id": "p0003", "type": "VIEWED", "ts": "3000-01-01"},
        ],
    }
    response = client.post("/events", json=body)
    assert response.status_code == 200, response.text
    report = response.json()
    for part in ("products", "interactions"):
        rejected = report[part]["rejected"]
        assert [r["line"] for r in rejected] == [2 if part == "interactions" else 1], part
        assert "in the future" in rejected[0]["reason"]
    assert report["products"]["nodes"]["Product"] == 1
    assert report["interactions"]["relationships"]["VIEWED"] == 1


# ----------------------------------------------------------------------------- behaviour


def _write_future(store: EmbeddedStore, rtype: str, user: str, product: str) -> None:
    """An interaction dated 3000-01-01, written with Cypher (the store's own writes refuse
    it now, as loads do)."""
    store.query(
        f"MATCH (u:User {{id: $u}}) MATCH (p:Product {{id: $p}}) "
        f"CREATE (u)-[:{rtype} {{ts: $ts}}]->(p)",
        {"u": user, "p": product, "ts": dt.datetime(3000, 1, 1)},
    )


def test_the_store_refuses_to_write_a_date_in_the_future(store: EmbeddedStore) -> None:
    store.upsert_nodes("User", pd.DataFrame({"id": ["u1"]}))
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"]}))
    frame = pd.DataFrame({"src": ["u1"], "dst": ["p1"], "ts": [pd.Timestamp("3000-01-01")]})
    with pytest.raises(ValidationError, match=r"VIEWED.ts: row 0: .* is in the future"):
        store.upsert_relationships("VIEWED", frame, start="User", end="Product")
    assert store.counts().relationships.get("VIEWED", 0) == 0


def _recency_shop(path: Path, future: bool) -> pd.DataFrame:
    """Four users, whose last views are 1, 10 and 100 days before 2024-06-01 and on it; with
    ``future``, u4 also viewed a product in the year 3000 (a store written before dates in
    the future were refused, or by hand)."""
    with EmbeddedStore(path) as store:
        store.upsert_nodes("User", pd.DataFrame({"id": ["u1", "u2", "u3", "u4", "u5"]}))
        store.upsert_nodes("Product", pd.DataFrame({"id": ["p1", "p2"]}))
        day = pd.Timestamp("2024-06-01")
        times = [day - pd.Timedelta(days=d) for d in (1, 10, 100, 0)]
        store.upsert_relationships(
            "VIEWED",
            pd.DataFrame({"src": ["u1", "u2", "u3", "u4"], "dst": ["p1"] * 4, "ts": times}),
            start="User",
            end="Product",
        )
        if future:
            _write_future(store, "PURCHASED", "u4", "p2")
        return behaviour_features(store, "User", standardize=False)


def test_recency_ignores_dates_in_the_future_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The reference of ``recency_days`` was the latest interaction of the store, so one dated
    3000 made every user about 357,000 days old; such dates are left out now (with a warning),
    so the features are those of the store without them (the purchase still counts)."""
    plain = _recency_shop(tmp_path / "a", future=False)
    with caplog.at_level(logging.WARNING, logger="graphfusion.features.behaviour"):
        odd = _recency_shop(tmp_path / "b", future=True)
    assert np.expm1(plain["recency_days"]).round(6).to_dict() == {
        "u1": 1.0, "u2": 10.0, "u3": 100.0, "u4": 0.0, "u5": 100.0,
    }  # fmt: skip
    pd.testing.assert_series_equal(odd["recency_days"], plain["recency_days"])
    assert odd.loc["u4", "purchases"] == np.log1p(1.0)
    assert any("in the future" in r.getMessage() and "u4" in r.getMessage() for r in caplog.records)


def test_recency_of_a_store_whose_every_date_is_in_the_future(tmp_path: Path) -> None:
    """No reference left: every user is as recent as the others (0), not NaN."""
    with EmbeddedStore(tmp_path / "s") as store:
        store.upsert_nodes("User", pd.DataFrame({"id": ["u1", "u2"]}))
        store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"]}))
        _write_future(store, "VIEWED", "u1", "p1")
        raw = behaviour_features(store, "User", standardize=False)
        assert raw["recency_days"].tolist() == [0.0, 0.0]
        assert np.isfinite(behaviour_features(store, "User").to_numpy()).all()
