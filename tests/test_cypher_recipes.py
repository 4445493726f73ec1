"""Pure-Cypher recommendations: exact on the embedded store, parameters only on Neo4j."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from graphfusion.cypher_recipes import SEEN, recommend, recommend_query
from graphfusion.errors import ValidationError
from graphfusion.ingest import load
from graphfusion.store import EmbeddedStore, Neo4jStore
from graphfusion.train import INTERACTIONS, TrainConfig, train

try:
    from cypher_lint import cypher_lint_available, lint_cypher, unavailable_reason
    from neo4j_recorder import RecordingDriver
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests.cypher_lint import cypher_lint_available, lint_cypher, unavailable_reason
    from tests.neo4j_recorder import RecordingDriver


def test_ladybug_query_ranks_unseen_products_by_the_models_own_scores(
    store: EmbeddedStore, tiny_shop: Path, tmp_path: Path
) -> None:
    """The recipe's cosine of ``rec_vec`` is the model's centred score over a positive
    constant: ``rec_vec`` holds factors of the model's score matrix, exact for LightGCN (its
    scores ``u . i`` have rank 64), and a coordinate filling each product's vector to norm 1
    (graphfusion.rec_vectors)."""
    load(store, "synthetic", {"shop": tiny_shop})
    config = TrainConfig(model="lightgcn", epochs=2, patience=2, batch_size=512)
    train(store, config, out_dir=tmp_path / "models")
    user, k = "u0001", 5
    seen = {
        r["p"]
        for t in SEEN
        for r in store.query(f"MATCH (:User {{id: $u}})-[:{t}]->(p:Product) RETURN p.id AS p",
                             {"u": user})
    }  # fmt: skip
    products = store.query(
        "MATCH (p:Product) RETURN p.id AS id, p.fused_vec AS f, p.rec_vec AS r ORDER BY id"
    )
    (me,) = store.query(
        "MATCH (u:User {id: $u}) RETURN u.fused_vec AS f, u.rec_vec AS r", {"u": user}
    )
    fused = np.asarray([r["f"] for r in products], dtype=np.float64)
    rec = np.asarray([r["r"] for r in products], dtype=np.float64)
    np.testing.assert_allclose(np.linalg.norm(rec, axis=1), 1.0, atol=1e-5)
    u_rec = np.asarray(me["r"], dtype=np.float64)
    assert u_rec[-1] == 0.0 and rec.shape[1] == len(u_rec) > fused.shape[1]
    model = fused @ np.asarray(me["f"], dtype=np.float64)  # LightGCN's own scores
    centred = model - model.mean()
    np.testing.assert_allclose(rec @ u_rec, centred, atol=1e-4 * np.abs(centred).max())
    want = {r["id"]: float(m) for r, m in zip(products, model, strict=True) if r["id"] not in seen}
    order = sorted(want, key=lambda i: (-want[i], i))
    assert seen and len(want) > k
    per_user = np.linalg.norm(u_rec)  # cosine = centred score / this

    rows = store.query(recommend_query("ladybug"), {"user_id": user, "k": k})
    assert recommend(store, user, k) == rows
    ids = [r["id"] for r in rows]
    scores = [r["score"] for r in rows]
    assert len(rows) == k and not set(ids) & seen
    assert scores == sorted(scores, reverse=True)
    assert [s * per_user + model.mean() for s in scores] == pytest.approx(
        [want[i] for i in ids], abs=1e-3
    )
    # the k best by the model, up to float32 rounding of near-ties
    assert [want[i] for i in ids] == pytest.approx([want[i] for i in order[:k]], abs=1e-3)
    top = [want[i] for i in order[:4]]
    if min(a - b for a, b in pairwise(top)) > 1e-3:
        assert ids[:3] == order[:3]

    assert store.query(recommend_query("ladybug"), {"user_id": "nobody", "k": k}) == []


def test_neo4j_query_uses_the_rec_index_with_parameters_only() -> None:
    def responder(query: str, params: dict[str, object]) -> list[dict[str, object]]:
        return [{"id": "p2", "title": "B", "score": 0.5}] if "queryNodes" in query else []

    driver = RecordingDriver(responder)
    store = Neo4jStore(driver=driver, database="shop")
    driver.calls.clear()
    user = "u1' RETURN 1 //"
    assert recommend(store, user, k=3) == [{"id": "p2", "title": "B", "score": 0.5}]
    (call,) = driver.calls
    assert call.query == recommend_query("neo4j")
    assert call.parameters == {"user_id": user, "k": 3}
    assert call.database == "shop"
    assert user not in call.query and "u1" not in call.query
    assert "db.index.vector.queryNodes('product_rec_vec', $k + seen, u.rec_vec)" in call.query
    assert call.query.rstrip().endswith("LIMIT $k")
    if not cypher_lint_available():
        pytest.skip(unavailable_reason())
    (result,) = lint_cypher([call.query])
    assert result.ok and not result.warnings, result.describe()


def test_seen_types_and_bad_arguments() -> None:
    assert SEEN == INTERACTIONS
    with pytest.raises(ValidationError, match="unknown dialect"):
        recommend_query("sparql")
    # the dimension is pasted into the casts: only a dimension the schema allows
    for dim in ("66] AS x", 0, -3, 4097, True, 66.0):
        with pytest.raises(ValidationError, match="dim must be"):
            recommend_query("ladybug", dim=dim)  # type: ignore[arg-type]
    assert "FLOAT[8]" in recommend_query("ladybug", dim=8)
    store = Neo4jStore(driver=RecordingDriver())
    with pytest.raises(ValidationError, match="k must be"):
        recommend(store, "u1", k=0)
    with pytest.raises(ValidationError, match="user_id"):
        recommend(store, " ", k=3)


def test_readme_shows_the_queries() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```cypher\n(.*?)```", readme, flags=re.S)
    for dialect in ("ladybug", "neo4j"):
        assert recommend_query(dialect).strip() in [b.strip() for b in blocks]
