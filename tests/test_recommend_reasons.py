"""The served reasons: each one true of the store, after live updates too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from graphfusion import Engine
from graphfusion.recommend import Recommender

INTERACTIONS = "VIEWED|PURCHASED|FAVORITED|RATED"


@pytest.fixture
def engine(trained_store: Path, private_copy: Callable[[Path], Engine]) -> Engine:
    """A private copy of the prepared store."""
    return private_copy(trained_store)


def _others_interactions(engine: Engine, user: str, product: str) -> int:
    """How many interactions users other than ``user`` have with ``product``, in the store."""
    rows = engine.cypher(
        f"MATCH (v:User)-[r:{INTERACTIONS}]->(p:Product {{id: $p}}) WHERE v.id <> $u "
        "RETURN count(r) AS n",
        {"u": user, "p": product},
    )
    return int(rows["n"].iloc[0])


def test_a_product_no_one_else_chose_is_not_called_popular(engine: Engine) -> None:
    """``popular`` claims other users' interactions: a product added live that nobody has
    chosen, or that only the user has, gets no such reason (it said "popular: 0
    interaction(s)", or counted the user's own purchase)."""
    new = pd.DataFrame({"id": ["pnew"], "title": ["A lonely lamp"], "price": [10.0]})
    assert not engine.add_products(new).rejected
    user = "u0001"
    assert all(r.kind != "popular" for r in engine.explain(user, "pnew"))
    report = engine.add_interactions(pd.DataFrame({"user_id": [user], "product_id": ["pnew"]}))
    assert not report.rejected
    assert all(r.kind != "popular" for r in engine.explain(user, "pnew"))
    listed = engine.recommend(user, k=100, exclude_seen=False)
    assert "pnew" in set(listed["product_id"])
    for product, reasons in zip(listed["product_id"], listed["reasons"], strict=True):
        for reason in reasons:
            if reason["kind"] == "popular":
                n = _others_interactions(engine, user, product)
                assert n > 0 and reason["text"] == f"popular: {n} interaction(s)"
    # a user with nothing yet: every product is explained by others' interactions, if any
    engine.cypher("CREATE (u:User {id: 'newcomer'})")
    for product, reasons in zip(*engine.recommend("newcomer", k=100)[["product_id", "reasons"]]
                                .to_dict("list").values(), strict=True):  # fmt: skip
        n = _others_interactions(engine, "newcomer", product)
        assert [r["text"] for r in reasons] == ([f"popular: {n} interaction(s)"] if n else [])


def test_a_live_products_photo_stays_in_the_reasons_after_more_products(
    engine: Engine, tiny_shop: Path
) -> None:
    """A product added live kept its photo in the reasons only until the next
    ``add_products``, which read the photos of the start again (none for it)."""
    looks = [r.text for r in engine.explain("u0001", "p0014") if r.kind == "looks_like"]
    assert looks, "p0014 has a look-alike reason to copy"
    clone = pd.DataFrame({"id": ["pclone"], "title": ["Lumen Studio Plastic Charger - Red"],
                          "image": [str(tiny_shop / "images" / "p0014.png")]})  # fmt: skip
    assert not engine.add_products(clone).rejected
    assert not engine.add_products(pd.DataFrame({"id": ["pother"], "title": ["Other"]})).rejected
    same = [r.text for r in engine.explain("u0001", "pclone") if r.kind == "looks_like"]
    assert same == looks
    # and a photo replaced live stays replaced: the photos are those a fresh start reads
    swap = pd.DataFrame({"id": ["p0014"], "image": [str(tiny_shop / "images" / "p0001.png")]})
    assert not engine.add_products(swap).rejected
    assert not engine.add_products(pd.DataFrame({"id": ["pthird"], "title": ["Third"]})).rejected
    served, fresh = engine.recommender(), Recommender(engine.store)
    assert served.state.items == fresh.state.items
    np.testing.assert_allclose(served.catalogue.image, fresh.catalogue.image, atol=1e-6)


def test_products_added_together_grow_the_served_state_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each new product of a call rebuilt every interaction matrix (users x products, per
    type, counts and weights): 9 sparse copies a product, 10 ms each on the bench shop. Now
    they grow once per call, to the state a fresh start gives."""
    import graphfusion.recommend as recommend

    rec = engine.recommender()
    grown, hstack = [], sp.hstack
    monkeypatch.setattr(recommend.sp, "hstack", lambda *a, **k: grown.append(1) or hstack(*a, **k))
    n = 12
    new = pd.DataFrame({"id": [f"pn{i:02d}" for i in range(n)],
                        "title": [f"Lumen mug number {i}" for i in range(n)],
                        "price": [5.0 + i for i in range(n)], "category_id": "c06",
                        "brand_id": "b02"})  # fmt: skip
    assert not engine.add_products(new).rejected
    monkeypatch.undo()
    matrices = 1 + len(rec.state.by_type) + len(rec.state.weights)
    assert len(grown) <= matrices
    fresh = Recommender(engine.store)
    st, want = rec.state, fresh.state
    assert st.items == want.items and st.item_index == want.item_index
    np.testing.assert_allclose(st.item_vecs, want.item_vecs, atol=1e-5)
    np.testing.assert_array_equal(st.item_bias, want.item_bias)
    assert st.kernel is not None and want.kernel is not None
    np.testing.assert_allclose(st.kernel, want.kernel, atol=1e-5)
    assert st.taste is not None and want.taste is not None
    for have, made in zip(st.taste, want.taste, strict=True):
        np.testing.assert_allclose(have, made, atol=1e-5)
    assert (st.seen != want.seen).nnz == 0
    for rtype, links in want.by_type.items():
        assert (st.by_type[rtype] != links).nnz == 0
        assert (st.weights[rtype] != want.weights[rtype]).nnz == 0
    assert len(engine.recommend("u0001", k=50, category="c06")) >= n


def test_a_product_of_the_users_own_is_explained_by_their_interactions(engine: Engine) -> None:
    """``explain`` of a product the user has interacted with says so first, naming the
    stored interaction types (it gave only other evidence, as for a product new to them);
    a product of no interaction of theirs gets no ``yours`` reason."""
    user = "u0001"
    rows = engine.cypher(
        f"MATCH (u:User {{id: $u}})-[r:{INTERACTIONS}]->(p:Product) "
        "RETURN p.id AS product, label(r) AS type",
        {"u": user},
    )
    assert len(rows)
    words = {"PURCHASED": "purchased", "FAVORITED": "favourited", "RATED": "rated",
             "VIEWED": "viewed"}  # fmt: skip
    for product, types in rows.groupby("product")["type"]:
        reasons = engine.explain(user, product)
        said = " and ".join(words[t] for t in words if t in set(types))
        assert reasons[0].kind == "yours" and reasons[0].text == f"you {said} this"
        assert reasons[0].path == (("User", user), ("Product", product))
        assert all(r.kind != "yours" for r in reasons[1:]) and len(reasons) <= 4
    listed = engine.recommend(user, k=100, exclude_seen=False)
    mine = set(rows["product"])
    for product, reasons in zip(listed["product_id"], listed["reasons"], strict=True):
        assert (bool(reasons) and reasons[0]["kind"] == "yours") == (product in mine)
