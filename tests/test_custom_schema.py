"""A schema of one's own, end to end on the embedded store: load, embed, train, recommend,
ask, defects, similar and the HeteroData export.

What a schema lacks is named before any work, by the application that needs it: training
(``fused_vec``, keys named ``id``), behaviour vectors, serving without categories, brands or
prices, users without demographics.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from graphfusion import Engine
from graphfusion.errors import SchemaError
from graphfusion.graph import to_heterodata
from graphfusion.mapping import parse_mapping
from graphfusion.schema import Schema, default_schema_path, load_schema, parse_schema

INTERACTION = "ADDED_TO_CART"
USER_DEMOGRAPHICS = {"age": "int", "gender": "string", "occupation": "string"}
FUSED = {"type": "vector", "dim": 64, "encoder": "model"}


def _schema(
    user: dict[str, Any] | None = None,
    product: dict[str, Any] | None = None,
    key: str = "id",
    nodes: dict[str, Any] | None = None,
    relationships: dict[str, Any] | None = None,
) -> Schema:
    """User -[ADDED_TO_CART]-> Product, with fused vectors, and what else is given."""
    raw = {
        "name": "own",
        "nodes": {
            "User": {"key": key, "properties": {key: "string", "fused_vec": FUSED, **(user or {})}},
            "Product": {"key": key, "properties": {
                key: "string", "title": "string", "fused_vec": FUSED, **(product or {})}},
            **(nodes or {}),
        },
        "relationships": {
            INTERACTION: {"between": [["User", "Product"]], "properties": {"weight": "float"}},
            **(relationships or {}),
        },
    }  # fmt: skip
    return parse_schema(raw, source="own.yaml")


def _frames(n_users: int = 30, n_products: int = 20) -> dict[str, pd.DataFrame]:
    """Users in five taste groups, each adding four products of its group and one other."""
    rng = np.random.default_rng(0)
    users = pd.DataFrame({"id": [f"u{i}" for i in range(n_users)]})
    products = pd.DataFrame({
        "id": [f"p{i}" for i in range(n_products)],
        "title": [f"item {i} of group {i % 5}" for i in range(n_products)],
    })  # fmt: skip
    pairs = set()
    for u in range(n_users):
        group = [p for p in range(n_products) if p % 5 == u % 5]
        pairs.update((f"u{u}", f"p{p}") for p in rng.choice(group, 4, replace=False))
        pairs.add((f"u{u}", f"p{rng.integers(n_products)}"))
    events = pd.DataFrame(sorted(pairs), columns=["u", "p"])
    return {"users": users, "products": products, "events": events}


def _load(engine: Engine) -> None:
    mapping = parse_mapping(
        {
            "name": "own",
            "sources": {"users": {}, "products": {}, "events": {}},
            "tables": {t: {"source": t, "format": "frame"} for t in _frames()},
            "nodes": [
                {"label": "User", "table": "users", "key": "id"},
                {"label": "Product", "table": "products", "key": "id",
                 "properties": {"title": "title"}},
            ],
            "relationships": [{"type": INTERACTION, "table": "events",
                               "from": {"label": "User", "key": "u"},
                               "to": {"label": "Product", "key": "p"}}],
        },
        engine.schema,
    )  # fmt: skip
    report = engine.load(mapping, _frames())
    assert not report.rejected


def _train(engine: Engine) -> Any:
    return engine.train("lightgcn", epochs=1, interactions=(INTERACTION,), type_weights=None)


def test_a_schema_with_its_own_interaction_and_extra_labels_trains_and_recommends(
    tmp_path: Path,
) -> None:
    """Extra labels (one with a vector of another dimension and no encoder), extra types
    (one named ``rev_`` of another, one between several pairs), a custom interaction type:
    training and serving use the interaction, the export carries the extras."""
    extra_nodes = {
        "Store": {"key": "id", "properties": {"id": "string", "name": "string"}},
        "Coupon": {"key": "id", "properties": {
            "id": "string", "embedding": {"type": "vector", "dim": 16}}},
        # the recommender names them where the schema has them
        "Category": {"key": "id", "properties": {"id": "string", "name": "string"}},
        "Brand": {"key": "id", "properties": {"id": "string", "name": "string"}},
    }  # fmt: skip
    extra_rels = {
        "SOLD_AT": {"between": [["Product", "Store"]], "properties": {"stock": "int"}},
        "rev_SOLD_AT": {"between": [["Product", "Store"]]},
        "REDEEMED": {"between": [["User", "Coupon"], ["Coupon", "Product"]]},
        "SUBCATEGORY_OF": {"between": [["Category", "Category"]]},
    }
    schema = _schema(USER_DEMOGRAPHICS, {"price": "float"}, nodes=extra_nodes,
                     relationships=extra_rels)  # fmt: skip
    with Engine(tmp_path / "store", schema=schema) as engine:
        _load(engine)
        vectors = np.random.default_rng(1).normal(size=(2, 16))
        engine.store.upsert_nodes("Coupon", pd.DataFrame({"id": ["c1", "c2"]}))
        assert engine.add_vectors("Coupon", "embedding", ["c1", "c2"], vectors) == (2, [])
        export = to_heterodata(engine.store)
        assert export.data["Coupon"].embedding.shape == (2, 16)
        assert ("User", INTERACTION, "Product") in export.data.edge_types
        result = _train(engine)
        assert result.test["recall@20"] > 0
        top = engine.recommend("u0", k=3)
        assert len(top) == 3 and not set(top["product_id"]) & _seen(engine, "u0")
        assert len(engine.similar("p0", modality="fused", k=2)) == 2
        mine = sorted(_seen(engine, "u0"))[0]
        assert engine.explain("u0", mine)[0].text == (
            f"you had an interaction of type {INTERACTION} with this"
        )


def _seen(engine: Engine, user: str) -> set[str]:
    rows = engine.cypher(
        f"MATCH (u:User {{id: $u}})-[:{INTERACTION}]->(p:Product) RETURN p.id AS id", {"u": user}
    )
    return set(rows["id"])


def test_the_built_in_schema_with_extras_still_serves_every_application(
    trained_store: Path, tmp_path: Path
) -> None:
    """The shipped schema plus a label and two types of one's own opens a store made with
    the built-in one (the extras are added), and ask, defects and recommend still answer."""
    raw = yaml.safe_load(default_schema_path().read_text())
    raw["nodes"]["Store"] = {"key": "id", "properties": {"id": "string", "city": "string"}}
    raw["relationships"]["SOLD_AT"] = {"between": [["Product", "Store"]]}
    raw["relationships"][INTERACTION] = {"between": [["User", "Product"]]}
    path = tmp_path / "extended.yaml"
    path.write_text(yaml.safe_dump(raw))
    folder = tmp_path / "copy"
    shutil.copytree(trained_store, folder)
    with Engine(folder, schema=load_schema(path)) as engine:
        assert "Store" in engine.stats().nodes
        assert len(engine.recommend("u0001", k=3, explain=False)) == 3
        assert len(engine.ask("Is the Lumen Everyday Mug dishwasher safe?", k=2).products) == 2
        assert engine.defects(top=1).iloc[0]["supplier_id"] == "s04"


def test_training_on_users_without_demographics(tmp_path: Path) -> None:
    with Engine(tmp_path / "store", schema=_schema(product={"price": "float"})) as engine:
        _load(engine)
        assert _train(engine).test["recall@20"] > 0


def test_training_refuses_a_schema_without_fused_vectors_first(tmp_path: Path) -> None:
    raw_user = {"key": "id", "properties": {"id": "string", **USER_DEMOGRAPHICS}}
    schema = parse_schema(
        {
            "name": "own",
            "nodes": {"User": raw_user, "Product": {"key": "id", "properties": {
                "id": "string", "title": "string", "price": "float", "fused_vec": FUSED}}},
            "relationships": {INTERACTION: {"between": [["User", "Product"]]}},
        },
        source="own.yaml",
    )  # fmt: skip
    with Engine(tmp_path / "store", schema=schema) as engine:
        _load(engine)
        with pytest.raises(SchemaError, match=r"training on ADDED_TO_CART needs .*User\.fused_vec"):
            _train(engine)
        assert not list((tmp_path / "store" / "models").glob("*.pt"))


@pytest.mark.parametrize("product", [{}, {"price": "float"}])
def test_recommending_without_categories_brands_or_prices(
    tmp_path: Path, product: dict[str, Any]
) -> None:
    with Engine(tmp_path / "store", schema=_schema(USER_DEMOGRAPHICS, product)) as engine:
        _load(engine)
        _train(engine)
        top = engine.recommend("u0", k=3)
        assert len(top) == 3
        assert engine.explain("u0", top["product_id"].iloc[0])


def test_behaviour_vectors_name_what_the_schema_lacks(tmp_path: Path) -> None:
    behaviour = {"behaviour_vec": {"type": "vector", "dim": 8, "encoder": "behaviour"}}
    schema = _schema({**USER_DEMOGRAPHICS, **behaviour}, {"price": "float"})
    with Engine(tmp_path / "store", schema=schema) as engine:
        _load(engine)
        with pytest.raises(SchemaError, match=r"behaviour vectors of User needs .*: .*VIEWED"):
            engine.embed(only="behaviour")


def test_labels_keyed_by_another_property_are_named_by_the_applications(tmp_path: Path) -> None:
    schema = _schema(USER_DEMOGRAPHICS, {"price": "float"}, key="sku")
    with Engine(tmp_path / "store", schema=schema) as engine:
        _load(engine)
        with pytest.raises(SchemaError, match=r"training on ADDED_TO_CART needs .*User\.id"):
            _train(engine)
        # it failed with the database's "Cannot find property id for n."
        with pytest.raises(SchemaError, match=r"similar by text needs .*: Product\.id, "):
            engine.similar("p0")


def test_a_store_keeps_the_schema_it_was_made_with(tmp_path: Path) -> None:
    """A store of one's own schema, opened again without it (``Engine(folder)``, every CLI
    command), was opened with the built-in schema: its own types were unknown to training
    and serving, and the built-in tables were added to it."""
    from click.testing import CliRunner

    from graphfusion.cli import main

    folder = tmp_path / "store"
    with Engine(folder, schema=_schema()) as engine:
        _load(engine)
    assert (folder / "schema.yaml").is_file()
    with Engine(folder) as engine:
        assert engine.schema.name == "own" and INTERACTION in engine.schema.relationships
        assert engine.schema.digest == _schema().digest
        tables = {r["name"] for r in engine.store.query("CALL show_tables() RETURN *")}
        assert "Supplier" not in tables  # the built-in tables were not added
        assert _train(engine).test["recall@20"] > 0
    res = CliRunner().invoke(main, ["stats", "--json", "--store", str(folder)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["relationships"][INTERACTION] == len(_frames()["events"])
    # a store of the built-in schema keeps no copy, and opens with the built-in schema
    with Engine(tmp_path / "plain") as engine:
        assert engine.schema.name == load_schema().name
    assert not (tmp_path / "plain" / "schema.yaml").exists()


def test_the_command_line_makes_and_serves_a_store_of_ones_own_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line had no way to name a schema: ``load`` checked every mapping against
    the built-in one, so a store of one's own could not be made there. ``--schema``,
    ``$GRAPHFUSION_SCHEMA`` and ``schema`` in the config file name one; afterwards the store
    keeps it."""
    from click.testing import CliRunner

    from graphfusion.cli import main

    monkeypatch.delenv("GRAPHFUSION_SCHEMA", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "own.yaml").write_text(yaml.safe_dump(_schema().raw), encoding="utf-8")
    frames = _frames()
    for name, frame in frames.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    mapping = {
        "name": "own",
        "sources": {name: {} for name in frames},
        "tables": {name: {"source": name, "format": "csv"} for name in frames},
        "nodes": [{"label": "User", "table": "users", "key": "id"},
                  {"label": "Product", "table": "products", "key": "id",
                   "properties": {"title": "title"}}],
        "relationships": [{"type": INTERACTION, "table": "events",
                           "from": {"label": "User", "key": "u"},
                           "to": {"label": "Product", "key": "p"}}],
    }  # fmt: skip
    (tmp_path / "own-mapping.yaml").write_text(yaml.safe_dump(mapping), encoding="utf-8")
    load = ["load", "own-mapping.yaml", *(f"--source={n}={n}.csv" for n in frames)]
    runner = CliRunner()
    res = runner.invoke(main, [*load, "--store", "built-in"])
    assert res.exit_code == 1 and f"type {INTERACTION!r}" in res.output, res.output
    assert not (tmp_path / "built-in").exists()
    for how, env in [
        (["--schema", "own.yaml"], {}),
        ([], {"GRAPHFUSION_SCHEMA": "own.yaml"}),
        (["--config", "project/graphfusion.toml"], {}),
    ]:
        (tmp_path / "project").mkdir(exist_ok=True)
        (tmp_path / "project" / "graphfusion.toml").write_text('schema = "../own.yaml"\n')
        folder = f"store{len(env)}{len(how)}"
        res = runner.invoke(main, [*how, *load, "--store", folder], env=env)
        assert res.exit_code == 0, res.output
        res = runner.invoke(main, ["stats", "--json", "--store", folder])  # no schema named
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["relationships"][INTERACTION] == len(frames["events"])
