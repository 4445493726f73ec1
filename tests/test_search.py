"""Similar-product search (graphfusion.search) on odd input: arguments of a wrong type, and
products whose vector has no direction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graphfusion import Engine
from graphfusion.errors import NotReadyError, ValidationError
from graphfusion.search import similar
from graphfusion.store import EmbeddedStore


@pytest.mark.parametrize("modality", [["text"], {"text": 1}, None, 3])
def test_a_modality_that_is_not_a_name_is_a_validation_error(
    store: EmbeddedStore, modality: object
) -> None:
    """A list or dict modality (unhashable) was a bare TypeError from the dict lookup."""
    with pytest.raises(ValidationError, match="unknown modality"):
        similar(store, "p1", modality, 3)  # type: ignore[arg-type]


def test_a_product_whose_vector_has_no_direction_is_refused_not_ranked(tmp_path: Path) -> None:
    """Products without interactions, reviews or prices are at the mean of every behaviour
    feature: ``embed`` gives them all-zero behaviour vectors. Searching by one returned every
    other product with a cosine of 1.0, "identical", on the embedded store (and a zero vector
    is an error in Neo4j's index); now the search says why it cannot rank."""
    with Engine(tmp_path / "store") as engine:
        frame = pd.DataFrame({"id": ["a", "b", "c"], "title": ["A", "B", "C"]})
        engine.store.upsert_nodes("Product", frame)
        engine.embed(only="behaviour")
        rows = engine.store.query("MATCH (p:Product) RETURN p.behaviour_vec AS v")
        assert all(not any(r["v"]) for r in rows)  # what embed made of them: zeros
        with pytest.raises(NotReadyError, match="no direction"):
            engine.similar("b", modality="behaviour", k=5)


def test_a_product_without_photos_is_told_so_not_to_run_embed(tmp_path: Path) -> None:
    """Searching by image from a product that has no photo said "no image vector yet; run
    `graphfusion embed`", which cannot help; a product without a text vector is still sent
    to ``embed``."""
    with Engine(tmp_path / "store") as engine:
        frame = pd.DataFrame({"id": ["a", "b"], "title": ["A", "B"]})
        engine.store.upsert_nodes("Product", frame)
        with pytest.raises(NotReadyError, match="no photo") as caught:
            engine.similar("a", modality="image")
        assert "embed" not in str(caught.value)
        with pytest.raises(NotReadyError, match="graphfusion embed"):
            engine.similar("a", modality="text")


def test_a_key_with_spaces_around_it_is_the_stored_key(tmp_path: Path) -> None:
    """Loads store " a " as "a", and the existence check reads it so; the vector query and
    the product's own exclusion used the key as given: "no text vector yet" for a product
    that has one."""
    rng = np.random.default_rng(0)
    with Engine(tmp_path / "store") as engine:
        dim = engine.schema.node("Product").prop("text_vec").type.dim
        frame = pd.DataFrame(
            {"id": ["a", "b", "c"], "text_vec": [rng.normal(size=dim).tolist() for _ in range(3)]}
        )
        engine.store.upsert_nodes("Product", frame)
        found = engine.similar(" a ", modality="text", k=5)
        assert sorted(found["id"]) == ["b", "c"]
