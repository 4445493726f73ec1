"""Ids typed in another Unicode form: loads store keys composed (NFC) and without spaces
around them, so a lookup of an id with a decomposed accent (as macOS and some web forms
give it) finds the stored key in the recommender, its explanations, QA's product asked on
and ``similar``; an id stored before keys were composed is still found exactly as stored."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from builders import qa_file

from graphfusion import Engine
from graphfusion.columnar import find_key
from graphfusion.errors import NotFoundError
from graphfusion.recommend import Recommender

NFC = unicodedata.normalize("NFC", "Café-1")
NFD = unicodedata.normalize("NFD", "Café-1")


@pytest.mark.parametrize(
    ("index", "key", "row"),
    [
        ({NFC: 3}, NFC, 3),
        ({NFC: 3}, NFD, 3),  # typed decomposed, stored composed
        ({NFD: 4}, NFD, 4),  # stored decomposed (before loads composed keys): exactly
        ({NFD: 4}, NFC, None),  # no store holds a key in a form no load gives
        ({NFC: 3, NFD: 4}, NFD, 4),  # the exact key first
        ({"p1": 0}, "P1", None),  # case is not folded
        ({"p1": 0}, " p1\n", 0),  # spaces around it dropped, as loads drop them
        ({" p1": 0}, " p1", 0),  # a key stored with them (by another tool): exactly
        ({f" {NFC}": 5}, f"{NFD}", None),  # the key as loads store it, not anything near
    ],
)
def test_find_key_takes_the_exact_key_then_the_key_as_loads_store_it(
    index: dict[str, int], key: str, row: int | None
) -> None:
    assert NFC != NFD
    assert find_key(index, key) == row


@pytest.fixture
def served(
    trained_store: Path, private_copy: Callable[[Path], Engine]
) -> tuple[Engine, Recommender]:
    """A private copy of the trained tiny shop with a product ``Café-1`` added (typed
    decomposed, bought by ``u0005``), served."""
    engine = private_copy(trained_store)
    recommender = Recommender(engine.store)
    new = pd.DataFrame(
        {"id": [NFD], "title": ["Acme Café Mug"], "price": [5.0], "category_id": ["c01"]}
    )
    assert not recommender.add_products(new).rejected
    bought = pd.DataFrame({"user_id": ["u0005"], "product_id": [NFD]})
    assert not recommender.add_interactions(bought).rejected
    return engine, recommender


def test_a_decomposed_product_id_is_the_stored_one(served: tuple[Engine, Recommender]) -> None:
    """The product was loaded as ``Café-1`` typed decomposed and stored composed; asked
    for decomposed, it is found (it was "no product 'Café-1' in the store (did you mean
    'Café-1'?)", two names that print alike)."""
    engine, recommender = served
    assert NFC in recommender.state.items and NFD not in recommender.state.items
    assert recommender.explain("u0005", NFD) == recommender.explain("u0005", NFC)
    with pytest.raises(NotFoundError, match="did you mean"):
        recommender.explain("u0005", unicodedata.normalize("NFD", "CAFÉ-1"))
    by_nfd = engine.similar(NFD, "text", k=3)
    pd.testing.assert_frame_equal(by_nfd, engine.similar(NFC, "text", k=3))
    assert NFC not in set(by_nfd["id"])  # the product itself left out


def test_qa_asks_on_a_decomposed_product_id(tmp_path: Path) -> None:
    """QA's product asked on is found as the recommender finds it: exactly, else composed."""
    rows = [
        (NFD, "Is this mug dishwasher safe?", "Yes, the glaze survives the dishwasher."),
        ("B0001LAMP", "Does the lamp dim?", "No, it has one brightness."),
    ]
    with Engine(tmp_path / "store") as engine:
        engine.load("amazon_qa", qa=qa_file(tmp_path / "qa.json.gz", rows))
        engine.embed(only=("text",))
        result = engine.ask("Can it go in the dishwasher?", product_id=NFD, k=2)
        assert result.products["product_id"][0] == NFC
        assert result.products["evidence"][0][0] == "the product the question was asked on"
