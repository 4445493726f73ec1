"""The ``Engine`` object itself: how it opens, closes and documents itself, and the sequence of
calls a data scientist makes in a notebook."""

from __future__ import annotations

import csv
import inspect
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import graphfusion
from graphfusion import Engine, errors
from graphfusion.errors import StoreError, StoreLockedError, ValidationError
from graphfusion.schema import parse_schema
from graphfusion.store import EmbeddedStore

PUBLIC = sorted(
    name
    for name, member in vars(Engine).items()
    if not name.startswith("_") and (callable(member) or isinstance(member, classmethod))
)


def test_every_public_method_has_a_google_docstring() -> None:
    """Args naming every parameter, Returns when it returns something."""
    incomplete = []
    for name in PUBLIC:
        method = getattr(Engine, name)
        doc = inspect.getdoc(method) or ""
        signature = inspect.signature(method)
        params = [p for p in signature.parameters if p not in {"self", "cls"}]
        named = [p.strip("*") for p in params]
        if params and ("Args:" not in doc or any(f"{p}:" not in doc for p in named)):
            incomplete.append(f"{name}: Args")
        if signature.return_annotation not in {None, "None"} and "Returns:" not in doc:
            incomplete.append(f"{name}: Returns")
        missing = [
            p
            for p, v in signature.parameters.items()
            if p not in {"self", "cls"} and v.annotation is inspect.Parameter.empty
        ]
        if missing or signature.return_annotation is inspect.Signature.empty:
            incomplete.append(f"{name}: annotations")
    assert not incomplete, incomplete


def test_the_public_api_exists_and_is_documented() -> None:
    for name in graphfusion.__all__:
        value = getattr(graphfusion, name)
        if name != "__version__":
            assert inspect.getdoc(value), name
    # every error an engine call raises can be caught as graphfusion.<Error>
    assert set(errors.__all__) <= set(graphfusion.__all__)
    assert graphfusion.NotFoundError is errors.NotFoundError


def test_a_closed_engine_refuses_what_it_had_built(
    trained_store: Path, private_copy: Callable[[Path], Engine]
) -> None:
    """Once closed, every call says so, also those whose answers were built before."""
    engine = private_copy(trained_store)
    engine.recommend("u0001", 2)
    engine.ask("Is the mug dishwasher safe?")
    engine.defects()
    engine.close()
    calls: dict[str, Callable[[], object]] = {
        "recommend": lambda: engine.recommend("u0001", 2),
        "explain": lambda: engine.explain("u0001", "p0014"),
        "ask": lambda: engine.ask("Is the mug dishwasher safe?"),
        "defects": engine.defects,
        "defect_evidence": lambda: engine.defect_evidence("s04"),
        "stats": engine.stats,
    }
    for name, call in calls.items():
        with pytest.raises(StoreError, match="closed"):
            call()
            pytest.fail(f"{name} answered after close")
    engine.close()  # twice is fine


def test_a_second_engine_on_one_store_is_refused_and_the_first_still_works(
    trained_store: Path, private_copy: Callable[[Path], Engine]
) -> None:
    first = private_copy(trained_store)
    assert isinstance(first.store, EmbeddedStore)
    with pytest.raises(StoreLockedError, match=r"already open in this process.*close it"):
        Engine(first.store.path)
    assert first.stats().nodes["Product"] == 40
    assert len(first.recommend("u0001", 3)) == 3


def test_the_context_manager_closes_the_store_when_the_body_raises(tmp_path: Path) -> None:
    folder = tmp_path / "shop" / "store"
    with pytest.raises(KeyError, match="boom"), Engine(folder) as engine:
        raise KeyError("boom")
    with pytest.raises(StoreError, match="closed"):
        engine.stats()
    Engine(folder).close()  # the folder is free again


def test_a_store_folder_under_the_home_folder(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``~`` is the home folder, as in pandas, not a folder named ``~`` in the working one."""
    with Engine("~/shop/store") as engine:
        assert isinstance(engine.store, EmbeddedStore)
        assert engine.store.path == home / "shop" / "store"
    with Engine(Path("~") / "shop" / "store") as engine:
        assert isinstance(engine.store, EmbeddedStore)
        assert engine.store.path == home / "shop" / "store"
    monkeypatch.setenv("GRAPHFUSION_STORE", "~/env/store")
    with Engine() as engine:
        assert isinstance(engine.store, EmbeddedStore)
        assert engine.store.path == home / "env" / "store"
    monkeypatch.setenv("GRAPHFUSION_STORE", "  ")
    with pytest.raises(ValidationError, match=r"\$GRAPHFUSION_STORE is empty"):
        Engine()
    assert not (Path.cwd() / "~").exists()


def test_a_relative_store_folder_is_in_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Engine("rel/store") as engine:
        assert engine.stats().nodes["Product"] == 0
    assert (tmp_path / "rel" / "store" / "graphfusion.json").is_file()


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (3, "folder path"),
        (b"/tmp/store", "folder path"),
        ("~no-such-user-here/store", "no such home folder"),
    ],
)
def test_bad_store_arguments(
    store: object, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError, match=message):
        Engine(store)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []  # no default store made instead


def test_a_file_or_a_full_folder_is_no_store(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(StoreError, match="not a folder"):
        Engine(tmp_path / "notes.txt")
    with pytest.raises(StoreError, match="not empty and is not a graphfusion store"):
        Engine(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_read_only_must_be_a_flag(tmp_path: Path) -> None:
    Engine(tmp_path / "s" / "store").close()
    with pytest.raises(ValidationError, match="read_only must be True or False"):
        Engine(tmp_path / "s" / "store", read_only="no")  # type: ignore[arg-type]


def test_folder_options_with_an_open_store_are_refused(tmp_path: Path) -> None:
    """``schema`` and ``read_only`` choose how a folder is opened: an open store has its own,
    and an engine that ignored them would write where the caller asked it not to."""
    other = parse_schema({"nodes": {"Thing": {"key": "id", "properties": {"id": "string"}}}})
    with EmbeddedStore(tmp_path / "s" / "store") as store:
        with pytest.raises(ValidationError, match="read_only"):
            Engine(store, read_only=True)
        with pytest.raises(ValidationError, match="schema"):
            Engine(store, schema=other)
        engine = Engine(store, schema=store.schema)  # the store's own: nothing to change
        assert engine.schema is store.schema
        assert engine.stats().nodes["Product"] == 0


def test_an_engine_on_a_store_of_another_schema(tmp_path: Path) -> None:
    other = parse_schema({
        "nodes": {
            "Item": {"key": "sku", "properties": {"sku": "string",
                                                  "v": {"type": "vector", "dim": 2}}},
        },
        "relationships": {},
    })  # fmt: skip
    with Engine(tmp_path / "s" / "store", schema=other) as engine:
        assert engine.schema is other
        assert engine.stats().nodes == {"Item": 0}
        written, errors = engine.add_vectors("Item", "v", ["i1"], [[1.0, 0.0]])
        assert written == 0 and [e.reason for e in errors] == ["no Item with this key"]


def _grown_shop(tiny_shop: Path, folder: Path) -> Path:
    """The tiny shop and one more product (supplier s04, batch bt009) with a question, its
    answer, three complaints and three purchases."""
    shutil.copytree(tiny_shop, folder)

    def add(name: str, *rows: list[object]) -> None:
        with (folder / name).open("a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)

    add("products.csv", ["p0041", "Zephyr Titanium Kettle - Blue",
                         "Zephyr Titanium Kettle - Blue. A blue titanium kettle. Induction "
                         "compatible.", 49.99, "USD", "2024-09-01T10:00:00", "c08", "b02",
                         "s04", "bt009", "images/p0001.png"])  # fmt: skip
    add("questions.csv", ["q0041", "p0041", "Is the Zephyr titanium kettle induction "
                          "compatible?", "yes/no", "2024-09-02T10:00:00"])  # fmt: skip
    add("answers.csv", ["a0046", "q0041", "Yes, the Zephyr kettle works on induction hobs.",
                        "yes", "2024-09-03T10:00:00"])  # fmt: skip
    add("reviews.csv", *[[f"r0020{i}", f"u000{i + 1}", "p0041", "Broke",
                          "The Zephyr kettle handle cracked after a week and it leaks. "
                          "Defective.", 1, "2024-09-05T10:00:00", True, 0]
                         for i in range(3)])  # fmt: skip
    add("interactions.csv", *[[f"u000{i + 1}", "p0041", "PURCHASED", "2024-09-04T10:00:00", 1.0]
                              for i in range(3)])  # fmt: skip
    return folder


def test_more_data_loaded_into_a_used_engine_reaches_every_answer(
    trained_store: Path, tiny_shop: Path, tmp_path: Path,
    private_copy: Callable[[Path], Engine],
) -> None:  # fmt: skip
    """The notebook sequence: recommend, ask and rank defects, then load more data and ask
    again: the recommender, QA index and defect analysis built before serve the new data."""
    engine = private_copy(trained_store)
    question = "Is the Zephyr titanium kettle induction compatible?"
    assert "p0041" not in set(engine.ask(question).products["product_id"])
    assert "p0041" not in set(engine.defects("product", top=100)["product_id"])
    engine.recommend("u0001", 3)

    report = engine.load("synthetic", shop=_grown_shop(tiny_shop, tmp_path / "grown"))
    assert not report.rejected
    assert engine.stats().nodes["Product"] == 41
    found = engine.ask(question)
    assert found.products["product_id"].iloc[0] == "p0041"
    assert found.answers["answer_id"].iloc[0] == "a0046"
    ranked = engine.defects("product", top=5)
    assert ranked["product_id"].iloc[0] == "p0041"  # three complaints of three reviews
    assert {e["key"] for e in engine.defect_evidence("p0041")} >= {"r00200", "r00201"}
    assert engine.explain("u0001", "p0041")  # the recommender knows the new purchase
    recs = engine.recommend("u0001", 40, explain=False)
    assert "p0041" not in set(recs["product_id"])  # bought: seen


def test_a_read_only_engine_refuses_to_write_before_it_reads(
    trained_store: Path, tiny_shop: Path, tmp_path: Path
) -> None:
    """Each call that writes says the store is read-only, up front (load read every source
    first and failed at its first write with LadybugDB's message; a load of unchanged data
    "succeeded"); reads still answer."""
    import numpy as np
    import pandas as pd

    folder = tmp_path / "store"
    shutil.copytree(trained_store, folder)
    with Engine(folder, read_only=True) as engine:
        calls: dict[str, Callable[[], object]] = {
            "load": lambda: engine.load("synthetic", shop=tiny_shop),
            "embed": lambda: engine.embed("text"),
            "add_vectors": lambda: engine.add_vectors(
                "Product", "text_vec", ["p0001"], np.ones((1, 384))
            ),
            "add_interactions": lambda: engine.add_interactions(
                pd.DataFrame({"user_id": ["u0001"], "product_id": ["p0002"]})
            ),
            "add_products": lambda: engine.add_products(pd.DataFrame({"id": ["pnew"]})),
            "training": lambda: engine.train("mf", epochs=1),
        }
        for name, call in calls.items():
            with pytest.raises(ValidationError, match=f"read-only; {name} writes to it"):
                call()
        assert len(engine.recommend("u0001", k=3, explain=False)) == 3
        assert engine.stats().nodes["Product"] == 40


def test_applications_name_what_a_schema_of_ones_own_lacks(tmp_path: Path) -> None:
    """On a schema without products (User -VIEWED-> Item), ask, defects and their evidence
    failed with LadybugDB's "Binder exception: Table Product does not exist", and train
    complained of the default type weights; each now names what it needs."""
    from graphfusion.errors import SchemaError
    from graphfusion.schema import parse_schema

    schema = parse_schema(
        {
            "version": 1,
            "name": "tiny",
            "nodes": {
                "User": {"key": "id", "properties": {"id": "string"}},
                "Item": {"key": "id", "properties": {"id": "string", "title": "string"}},
            },
            "relationships": {"VIEWED": {"between": [["User", "Item"]]}},
        }
    )
    with Engine(tmp_path / "s" / "store", schema=schema) as engine:
        cases: dict[str, Callable[[], object]] = {
            "question answering needs .*: Product, Question": lambda: engine.ask("Is it big?"),
            "defect analysis needs .*: Product, Review": lambda: engine.defects(),
            "defect analysis needs": lambda: engine.defect_evidence("x"),
            "the recalls report needs .*: Recall, Supplier, NAMES": lambda: engine.recalls(),
            "training on VIEWED needs .*: Product, User.fused_vec \\(": lambda: engine.train(
                "mf", epochs=1, interactions=("VIEWED",)
            ),
        }
        for message, call in cases.items():
            with pytest.raises(SchemaError, match=message):
                call()
