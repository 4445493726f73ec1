"""The recall report on a real embedded store loaded through the ``cpsc_recalls`` mapping."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner
from formats import CPSC_COLUMNS

from graphfusion import Engine
from graphfusion.cli import main
from graphfusion.errors import ValidationError
from graphfusion.recalls import hazard_types, recall_report

# (recall number, hazard text, manufacturer, retailer named in "Sold At")
RECALLS = [
    ("20-001", "The toaster can overheat, posing a fire hazard.", "Acme Inc.", "Shopmart"),
    ("20-002", "Wiring can short, posing a fire hazard.", "Acme Inc.", "Shopmart"),
    ("20-003", "The cord can ignite.", "Acme Inc.", ""),
    ("20-004", "The unit can catch fire.", "Beta Corp.", "Shopmart"),
    ("20-005", "The blade can break, posing a laceration hazard.", "Gamma LLC", "Shopmart"),
    ("20-006", "Posing electric shock and burn hazards.", "Beta Corp.", ""),
    ("20-007", "", "Delta Co.", ""),
    ("20-008", "The glass carafe can shatter, posing a laceration hazard.", "Eta Inc.", ""),
]


def _write(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recalls.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(CPSC_COLUMNS)
        for number, hazard, maker, shop in RECALLS:
            row = {
                "Recall Number": number,
                "Date": f"March {int(number[-1]) + 1}, 2020",
                "Recall Heading": f"Recall {number}",
                "Name of product": f"Appliance {number}",
                "Description": f"Appliance {number}.",
                "Hazard Description": hazard,
                "Manufacturers": f"{maker}, of Springfield, Ill.",
                "Sold At": f"{shop} stores nationwide from 2019 to 2020." if shop else "",
            }
            writer.writerow([row.get(c, "") for c in CPSC_COLUMNS])
    return path


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    folder = tmp_path_factory.mktemp("recalls")
    with Engine(folder / "store") as engine:
        report = engine.load("cpsc_recalls", recalls=_write(folder / "csv"))
        assert report.rejected == []
        yield engine


def test_hazard_types_are_named_in_order_then_matched_by_meaning() -> None:
    frame = hazard_types(
        [
            "posing electric shock and burn hazards",
            "Hot water can spray out of the kettle onto the user.",
            None,
            "   ",
        ]
    )
    assert frame["hazards"].tolist() == [
        ["electric shock", "burn"],
        ["burn"],
        ["unknown"],
        ["unknown"],
    ]
    assert frame["hazard_type"].tolist() == ["electric shock", "burn", "unknown", "unknown"]
    assert frame["method"].tolist() == ["named", "similar", "none", "none"]
    assert frame["similarity"].isna().tolist() == [True, False, True, True]


def test_companies_with_several_recalls(engine: Engine) -> None:
    report = engine.recalls()
    companies = report.companies.set_index("supplier_id")
    # Gamma, Delta and Eta are named once: left out
    assert companies.index.tolist() == ["shopmart", "acme", "beta"]
    assert companies.loc["shopmart", "recalls"] == 4
    assert companies.loc["shopmart", "roles"] == ["retailer"]
    assert companies.loc["acme", "roles"] == ["manufacturer"]
    assert companies.loc["acme", "recall_ids"] == ["20-001", "20-002", "20-003"]
    assert companies.loc["acme", "hazard_types"] == {"fire": 3}
    assert companies.loc["beta", "hazard_types"] == {"fire": 1, "electric shock": 1, "burn": 1}
    assert companies.loc["shopmart", "main_hazard"] == "fire"
    assert str(companies.loc["acme", "first"].date()) == "2020-03-02"
    assert str(companies.loc["acme", "last"].date()) == "2020-03-04"
    every = engine.recalls(min_recalls=1).companies
    assert set(every["supplier_id"]) == {"shopmart", "acme", "beta", "gamma", "delta", "eta"}


def test_recall_without_hazard_text_is_typed_from_its_title(engine: Engine) -> None:
    recalls = engine.recalls().recalls.set_index("recall_id")
    # "Recall 20-007" names no hazard: matched by meaning or "other", never "unknown"
    assert recalls.loc["20-007", "method"] == "similar"
    assert recalls.loc["20-006", "hazards"] == ["electric shock", "burn"]


def test_fire_clusters_on_repeat_firms_and_laceration_does_not(engine: Engine) -> None:
    clusters = engine.recalls().clusters.set_index("hazard_type")
    fire = clusters.loc["fire"]
    assert fire["recalls"] == 4
    assert fire["repeat_firms"] == {"acme": 3, "shopmart": 3}
    assert fire["repeat_share"] == 1.0
    assert fire["expected_share"] < 1.0
    assert fire["lift"] > 1.0
    laceration = clusters.loc["laceration"]
    assert laceration["repeat_firms"] == {}
    assert laceration["repeat_share"] == 0.0
    assert {"unknown", "other"}.isdisjoint(clusters.index)


def test_firm_hazard_table_and_plots(engine: Engine, tmp_path: Path) -> None:
    report = engine.recalls()
    table = report.firm_hazards(top=2)
    assert table.index.tolist() == ["shopmart", "acme"]
    assert table.loc["acme", "fire"] == 3
    assert table.loc["shopmart"].sum() == 4
    for name, draw in (("heat.png", report.plot), ("graph.png", report.plot_graph)):
        out = draw(tmp_path / name)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValidationError, match="top"):
        report.firm_hazards(top=0)


def test_bad_input(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="min_recalls"):
        engine.recalls(min_recalls=0)
    with Engine(tmp_path / "empty") as empty, pytest.raises(ValidationError, match="no recalls"):
        empty.recalls()
    with pytest.raises(ValidationError, match="min_recalls"):
        engine.recalls(min_recalls=True)  # type: ignore[arg-type]
    assert len(engine.recalls(min_recalls=np.int64(1)).companies)  # a numpy integer is an int
    none_twice = recall_report(engine.store, min_recalls=99)
    assert none_twice.companies.empty
    with pytest.raises(ValidationError, match="nothing to plot"):
        none_twice.plot(tmp_path / "x.png")


def test_recalls_command(tmp_path: Path) -> None:
    folder = str(tmp_path / "store")
    runner = CliRunner()
    source = f"recalls={_write(tmp_path / 'csv')}"
    loaded = runner.invoke(main, ["load", "cpsc_recalls", "--source", source, "--store", folder])
    assert loaded.exit_code == 0, loaded.output
    res = runner.invoke(main, ["recalls", "--json", "--store", folder, "--plot", str(tmp_path)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert (data["recalls"], data["firms"]) == (8, 6)
    assert [c["supplier_id"] for c in data["companies"]] == ["shopmart", "acme", "beta"]
    assert data["clusters"][0]["hazard_type"] == "fire"
    assert (tmp_path / "recalls-firms.png").exists() and (tmp_path / "recalls-graph.png").exists()
    res = runner.invoke(main, ["recalls", "--min-recalls", "3", "--store", folder])
    assert res.exit_code == 0, res.output
    assert (
        "2 firms named by 3+ recalls" in res.output and "Acme (manufacturer): fire 3" in res.output
    )
    # --plot where no firm qualifies said nothing and wrote nothing
    args = ["recalls", "--min-recalls", "50", "--store", folder, "--plot", str(tmp_path / "p")]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "no plots: no firm is named by 50 or more recalls" in res.stderr
    assert not (tmp_path / "p").exists()
    Engine(tmp_path / "empty").close()  # a store, with no recalls in it
    empty = runner.invoke(main, ["recalls", "--store", str(tmp_path / "empty")])
    assert empty.exit_code == 1 and "no recalls" in empty.output
    assert runner.invoke(main, ["recalls", "--min-recalls", "0"]).exit_code == 2


def test_words_that_merely_contain_a_hazard_word_name_no_hazard() -> None:
    # a gas burner is no burn hazard, a meat smoker no fire hazard
    frame = hazard_types(
        [
            "Burners on the ranges can fail to turn off, posing a fire hazard.",
            "The heating element on the smoker is defective, posing an electric shock hazard.",
            "Smoke and burning plastic: posing fire and burn hazards.",
        ]
    )
    assert frame["hazards"].tolist() == [["fire"], ["electric shock"], ["fire", "burn"]]


def test_an_injury_is_an_impact_hazard_only_where_no_other_hazard_is_named() -> None:
    """Texts that say "burn injuries" or "injury or death from carbon monoxide poisoning"
    counted as impact-or-injury recalls too (30 of the real export's 372 recalls), swelling
    that type's row of the cluster table from 33 recalls to 63."""
    frame = hazard_types(
        [
            "The kettle can burst, posing a risk of burn injuries to consumers.",
            "The range can emit carbon monoxide, posing a risk of injury or death from "
            "carbon monoxide poisoning.",
            "The blade can detach, posing an injury hazard.",
            "The lid can fly off and strike consumers, posing injury and burn hazards.",
            "Riesgo de lesiones.",
        ]
    )
    assert frame["hazards"].tolist() == [
        ["burn"],
        ["poisoning"],
        ["impact or injury"],
        ["impact or injury", "burn"],
        ["impact or injury"],
    ]
    assert frame["method"].tolist() == ["named"] * 5


def test_recalls_that_name_no_firm(tmp_path: Path) -> None:
    # recalls loaded without manufacturers, importers, distributors or retailers: hazard
    # types and clusters, and no firm named by several recalls
    with Engine(tmp_path / "store") as engine:
        engine.store.write_node_table("Recall", pa.table({
            "id": ["r1", "r2"], "title": ["Kettle", "Toaster"],
            "hazard": ["Posing a burn hazard.", "Posing fire and burn hazards."],
        }))  # fmt: skip
        report = engine.recalls()
    assert report.links.empty and report.companies.empty
    assert report.recalls["firms"].tolist() == [[], []]
    clusters = report.clusters.set_index("hazard_type")
    assert clusters.loc["burn", "recalls"] == 2 and clusters.loc["burn", "firms"] == 0
    with pytest.raises(ValidationError, match="nothing to plot"):
        report.plot(tmp_path / "heat.png")


def test_arguments_are_checked(engine: Engine, tmp_path: Path) -> None:
    for seed in (-1, "x", 1.5, True):
        with pytest.raises(ValidationError, match="seed must be"):
            recall_report(engine.store, seed=seed)  # type: ignore[arg-type]
    assert recall_report(engine.store, seed=np.int64(3)).clusters["lift"].notna().any()
    report = engine.recalls()
    assert report.firm_hazards(np.int64(2)).index.tolist() == ["shopmart", "acme"]
    assert report.plot_graph(tmp_path / "g.png", top=np.int64(2)).exists()
    for top in (0, 2.0, "2"):
        with pytest.raises(ValidationError, match="top must be"):
            report.firm_hazards(top)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="top must be"):
            report.plot_graph(tmp_path / "g.png", top=top)  # type: ignore[arg-type]
    # one text is not a list of texts (it is not read letter by letter)
    with pytest.raises(ValidationError, match="texts must be a list"):
        hazard_types("posing a fire hazard")  # type: ignore[arg-type]
    texts = pd.Series(["posing a fire hazard", "posing a burn hazard"])
    assert hazard_types(texts)["hazard_type"].tolist() == ["fire", "burn"]  # type: ignore[arg-type]


def test_plots_draw_firm_names_as_written(tmp_path: Path) -> None:
    # a firm name with dollar signs is drawn as text, not parsed as matplotlib math
    with Engine(tmp_path / "store") as engine:
        engine.store.write_node_table("Recall", pa.table({
            "id": ["r1", "r2"], "title": ["Kettle", "Toaster"],
            "hazard": ["Posing a burn hazard.", "Posing a fire hazard."],
        }))  # fmt: skip
        engine.store.write_node_table("Supplier", pa.table({"id": ["d"], "name": ["$x^$ Store"]}))
        engine.store.write_rel_table("NAMES", pa.table({"src": ["r1", "r2"], "dst": ["d", "d"]}),
                                     start="Recall", end="Supplier")  # fmt: skip
        report = engine.recalls()
    assert report.companies["name"].tolist() == ["$x^$ Store"]
    assert report.plot(tmp_path / "heat.png").stat().st_size > 1000
    assert report.plot_graph(tmp_path / "graph.png").stat().st_size > 1000


def test_a_firms_main_hazard_is_a_hazard(tmp_path: Path) -> None:
    """Recalls without any text (hazard type ``unknown``) made a firm's main hazard
    ``unknown`` when they outnumbered its recalls that name one; they still count in its
    ``hazard_types``."""
    with Engine(tmp_path / "store") as engine:
        engine.store.write_node_table("Recall", pa.table({
            "id": ["r1", "r2", "r3", "r4", "r5"],
            "title": [None, None, "Kettle", None, "Heater"],
            "hazard": [None, "  ", "Posing a burn hazard.", None, "Posing a fire hazard."],
        }))  # fmt: skip
        engine.store.write_node_table("Supplier", pa.table({"id": ["a", "b"], "name": ["A", "B"]}))
        engine.store.write_rel_table("NAMES", pa.table({
            "src": ["r1", "r2", "r3", "r4", "r5"], "dst": ["a", "a", "a", "b", "b"],
        }), start="Recall", end="Supplier")  # fmt: skip
        companies = engine.recalls().companies.set_index("supplier_id")
    assert companies.at["a", "hazard_types"] == {"unknown": 2, "burn": 1}
    assert companies.at["a", "main_hazard"] == "burn"
    assert companies.at["b", "main_hazard"] == "fire"
    # a firm whose recalls name no hazard at all keeps "unknown"
    with Engine(tmp_path / "bare") as engine:
        engine.store.write_node_table("Recall", pa.table({"id": ["r1", "r2"]}))
        engine.store.write_node_table("Supplier", pa.table({"id": ["a"], "name": ["A"]}))
        engine.store.write_rel_table("NAMES", pa.table({"src": ["r1", "r2"], "dst": ["a", "a"]}),
                                     start="Recall", end="Supplier")  # fmt: skip
        assert engine.recalls().companies["main_hazard"].tolist() == ["unknown"]


def test_a_tie_for_a_firms_main_hazard_goes_to_its_latest_recall(tmp_path: Path) -> None:
    """A firm whose recalls name two types equally often got whichever pandas' sort put
    first (27 of the 67 repeat firms of the real export tie); now the type of its latest
    recall, by date, then by recall id where the dates are equal or missing."""
    with Engine(tmp_path / "store") as engine:
        engine.store.write_node_table("Recall", pa.table({
            "id": ["r1", "r2", "r3", "r4", "r5", "r6"],
            "hazard": ["Posing a fire hazard.", "Posing a burn hazard.",
                       "Posing a laceration hazard.", "Posing a fire hazard.",
                       "Posing a burn hazard.", "Posing a laceration hazard."],
            "ts": pa.array([dt.datetime(2020, 1, 1), dt.datetime(2024, 1, 1),
                            dt.datetime(2019, 1, 1), dt.datetime(2022, 1, 1), None, None],
                           pa.timestamp("us")),
        }))  # fmt: skip
        engine.store.write_node_table(
            "Supplier", pa.table({"id": ["a", "b", "c"], "name": ["A", "B", "C"]})
        )
        engine.store.write_rel_table("NAMES", pa.table({
            "src": ["r1", "r2", "r3", "r4", "r5", "r6"], "dst": ["a", "a", "b", "b", "c", "c"],
        }), start="Recall", end="Supplier")  # fmt: skip
        companies = engine.recalls().companies.set_index("supplier_id")
    assert companies["main_hazard"].to_dict() == {"a": "burn", "b": "fire", "c": "laceration"}
    assert list(companies.at["a", "hazard_types"]) == ["burn", "fire"]


def test_a_hazard_text_of_invisible_characters_is_no_text() -> None:
    """A text of zero-width or control characters alone is no hazard text (``unknown``), as
    ``embed`` treats it; the text encoder refuses to encode it."""
    frame = hazard_types(["\u200b\u200b", "\x00", " \u200d "])
    assert frame["hazard_type"].tolist() == ["unknown"] * 3
    assert frame["method"].tolist() == ["none"] * 3
