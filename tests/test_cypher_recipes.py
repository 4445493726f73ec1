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


def _unit(rows: list[list[float]]) -> np.ndarray:
    m = np.asarray(rows, dtype=np.float64)
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


def test_ladybug_query_is_an_exact_cosine_ranking_of_unseen_products(
    store: EmbeddedStore, tiny_shop: Path, tmp_path: Path
) -> None:
    load(store, "synthetic", {"shop": tiny_shop})
    config = TrainConfig(model="fusion", epochs=2, patience=2, batch_size=512)
    train(store, config, out_dir=tmp_path / "models")
    user, k = "u0001", 5
    seen = {
        r["p"]
        for t in SEEN
        for r in store.query(f"MATCH (:User {{id: $u}})-[:{t}]->(p:Product) RETURN p.id AS p",
                             {"u": user})
    }  # fmt: skip
    products = store.query("MATCH (p:Product) RETURN p.id AS id, p.fused_vec AS v ORDER BY id")
    (u_vec,) = [r["v"] for r in store.query("MATCH (u:User {id: $u}) RETURN u.fused_vec AS v",
                                            {"u": user})]  # fmt: skip
    unseen = [r for r in products if r["id"] not in seen]
    assert seen and len(unseen) > k
    cosine = _unit([r["v"] for r in unseen]) @ _unit([u_vec])[0]
    want = {r["id"]: float(c) for r, c in zip(unseen, cosine, strict=True)}
    order = sorted(want, key=lambda i: (-want[i], i))

    rows = store.query(recommend_query("ladybug"), {"user_id": user, "k": k})
    assert recommend(store, user, k) == rows
    ids = [r["id"] for r in rows]
    scores = [r["score"] for r in rows]
    assert len(rows) == k and not set(ids) & seen
    assert scores == sorted(scores, reverse=True)
    assert scores == pytest.approx([want[i] for i in ids], abs=1e-5)
    # the k best by numpy, up to float32 rounding of near-ties
    assert [want[i] for i in ids] == pytest.approx([want[i] for i in order[:k]], abs=1e-5)
    top = [want[i] for i in order[:4]]
    if min(a - b for a, b in pairwise(top)) > 1e-5:
        assert ids[:3] == order[:3]

    assert store.query(recommend_query("ladybug"), {"user_id": "nobody", "k": k}) == []


def test_neo4j_query_uses_the_fused_index_with_parameters_only() -> None:
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
    assert "db.index.vector.queryNodes('product_fused_vec', $k + seen, u.fused_vec)" in call.query
    assert call.query.rstrip().endswith("LIMIT $k")
    if not cypher_lint_available():
        pytest.skip(unavailable_reason())
    (result,) = lint_cypher([call.query])
    assert result.ok and not result.warnings, result.describe()


def test_seen_types_and_bad_arguments() -> None:
    assert SEEN == INTERACTIONS
    with pytest.raises(ValidationError, match="unknown dialect"):
        recommend_query("sparql")
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
