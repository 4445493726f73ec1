"""The fusion GNN on a small random heterogeneous graph: shapes, determinism, gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.data import HeteroData

from graphfusion.errors import ValidationError
from graphfusion.models import FusionGNN


def _graph() -> HeteroData:
    g = torch.Generator().manual_seed(0)
    data = HeteroData()
    data["User"].num_nodes = 6
    data["Product"].num_nodes = 9
    data["Product"].text_vec = torch.randn(9, 12, generator=g)
    data["Brand"].num_nodes = 3
    inter = torch.stack(
        [torch.randint(0, 6, (20,), generator=g), torch.randint(0, 9, (20,), generator=g)]
    )
    data["User", "INTERACTED", "Product"].edge_index = inter
    data["Product", "rev_INTERACTED", "User"].edge_index = inter.flip(0)
    brand = torch.stack([torch.arange(9), torch.arange(9) % 3])
    data["Product", "OF_BRAND", "Brand"].edge_index = brand
    data["Brand", "rev_OF_BRAND", "Product"].edge_index = brand.flip(0)
    return data


@pytest.mark.parametrize("layers", [1, 2])
def test_shapes_and_determinism(layers: int) -> None:
    torch.manual_seed(0)
    a = FusionGNN(_graph(), dim=8, num_layers=layers)
    torch.manual_seed(0)
    b = FusionGNN(_graph(), dim=8, num_layers=layers)
    a.eval(), b.eval()
    u, i = a.embeddings()
    assert u.shape == (6, 8) and i.shape == (9, 8)
    assert a.scores(torch.arange(6)).shape == (6, 9)
    assert torch.equal(a.scores(torch.arange(6)), b.scores(torch.arange(6)))
    out = a()
    assert set(out) == {"User", "Product", "Brand"}


def test_content_path_reaches_the_product_embeddings() -> None:
    torch.manual_seed(0)
    model = FusionGNN(_graph(), dim=8)
    assert "Product" in model.proj and "Brand" not in model.proj
    assert "Brand" in model.ids  # no features: id embedding only
    _, items = model.embeddings()
    items.sum().backward()
    first = model.proj["Product"]["text_vec"][0]  # type: ignore[index]
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0
    # the brand's embedding reaches its products through the content tower
    assert model.ids["Brand"].weight.grad.abs().sum() > 0  # type: ignore[union-attr]


def test_interactions_do_not_enter_the_content_tower() -> None:
    torch.manual_seed(0)
    model = FusionGNN(_graph(), dim=8)
    assert all(et[1] not in ("INTERACTED", "rev_INTERACTED") for et in model.edge_types)
    before = model.content()["Product"]
    changed = _graph()
    changed["User", "INTERACTED", "Product"].edge_index = torch.tensor([[0], [0]])
    torch.manual_seed(0)
    other = FusionGNN(changed, dim=8)
    assert torch.allclose(other.content()["Product"], before)


def test_cold_products_are_ranked_by_content_alone() -> None:
    data = _graph()
    inter = data["User", "INTERACTED", "Product"].edge_index
    keep = inter[1] != 8  # product 8 has no interactions: cold
    data["User", "INTERACTED", "Product"].edge_index = inter[:, keep]
    torch.manual_seed(0)
    model = FusionGNN(data, dim=8).eval()
    assert not bool(model.warm[8]) and bool(model.warm[inter[1, keep]].all())
    content = model.content()["Product"]
    users, _ = model.embeddings()
    assert torch.allclose(model.cold_scores(torch.arange(6))[:, 8], users @ content[8])
    # its id embedding, never trained, does not reach the fused vectors
    before = model.embeddings()[1]
    with torch.no_grad():
        model.ids["Product"].weight[8] += 100.0  # type: ignore[index]
    assert torch.allclose(model.embeddings()[1], before)


def test_loss_decreases_with_training() -> None:
    torch.manual_seed(0)
    model = FusionGNN(_graph(), dim=8)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    inter = _graph()["User", "INTERACTED", "Product"].edge_index
    neg = torch.randint(0, 9, (inter.shape[1],), generator=torch.Generator().manual_seed(1))
    losses = []
    for _ in range(30):
        loss = model.loss(inter[0], inter[1], neg, reg=1e-4)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bad_graphs_and_settings() -> None:
    data = HeteroData()
    data["Brand"].num_nodes = 2
    with pytest.raises(ValidationError, match="needs User and Product"):
        FusionGNN(data)
    no_edges = _graph()
    del no_edges["User", "INTERACTED", "Product"]
    with pytest.raises(ValidationError, match="INTERACTED"):
        FusionGNN(no_edges)
    with pytest.raises(ValidationError, match="content_weight"):
        FusionGNN(_graph(), content_weight=-1.0)


def test_beats_popularity_where_content_decides() -> None:
    """Users shop in one of 4 clusters that only the products' text vectors reveal; products
    are equally popular. Trained with BPR, the fusion model ranks held-out products of the
    user's cluster far above what popularity can."""
    from graphfusion.evaluate import full_ranking_metrics
    from graphfusion.models import Popularity

    g = torch.Generator().manual_seed(0)
    n_users, n_items, k = 80, 60, 4
    item_cluster = torch.arange(n_items) % k
    user_cluster = torch.arange(n_users) % k
    centers = torch.randn(k, 16, generator=g)
    data = HeteroData()
    data["User"].num_nodes = n_users
    data["Product"].num_nodes = n_items
    data["Product"].text_vec = centers[item_cluster] + 0.3 * torch.randn(n_items, 16, generator=g)
    train_pairs, test_truth = [], []
    for u in range(n_users):
        mine = (item_cluster == user_cluster[u]).nonzero().flatten()
        chosen = mine[torch.randperm(len(mine), generator=g)[:8]]
        train_pairs += [(u, int(i)) for i in chosen[:5]]
        test_truth.append([int(i) for i in chosen[5:]])
    edges = torch.tensor(train_pairs).t()
    data["User", "INTERACTED", "Product"].edge_index = edges
    torch.manual_seed(0)
    model = FusionGNN(data, dim=16)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        neg = torch.randint(0, n_items, (edges.shape[1],), generator=g)
        loss = model.loss(edges[0], edges[1], neg, reg=1e-4)
        opt.zero_grad()
        loss.backward()
        opt.step()
    seen = [[i for (v, i) in train_pairs if v == u] for u in range(n_users)]
    model.eval()
    with torch.no_grad():
        fusion = full_ranking_metrics(model.scores(torch.arange(n_users)).numpy(), seen,
                                      test_truth, ks=(10,))  # fmt: skip
    pop = Popularity(edges, n_users, n_items).scores(torch.arange(n_users)).numpy()
    popular = full_ranking_metrics(pop, seen, test_truth, ks=(10,))
    assert fusion["recall@10"] > 0.8
    assert fusion["recall@10"] > popular["recall@10"] + 0.3


def test_initialization_does_not_depend_on_the_hash_seed() -> None:
    """Two processes with different string hashing build the same seeded model (the order
    in which layers are created must not follow a set's order)."""
    import os
    import subprocess
    import sys

    code = (
        "import torch, tests.test_models_fusion as t\n"
        "from graphfusion.models import FusionGNN\n"
        "g = t._graph()\n"
        "g['Brand'].text_vec = torch.randn(3, 12)\n"
        "g['User', 'FOLLOWS', 'Product'].edge_index = torch.tensor([[0, 1], [2, 3]])\n"
        "g['Product', 'rev_FOLLOWS', 'User'].edge_index = torch.tensor([[2, 3], [0, 1]])\n"
        "g['Brand', 'LIKED_BY', 'User'].edge_index = torch.tensor([[0, 1], [4, 5]])\n"
        "g['User', 'LIKES', 'Brand'].edge_index = torch.tensor([[4, 5], [0, 1]])\n"
        "torch.manual_seed(0)\n"
        "m = FusionGNN(g, dim=8, context_layers=2)\n"
        "print([round(float(p.sum()), 5) for _, p in sorted(m.named_parameters())])\n"
    )
    out = []
    for seed in ("1", "2", "3", "4"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, timeout=120, check=True)  # fmt: skip
        out.append(proc.stdout.strip().splitlines()[-1])
    assert len(set(out)) == 1, out


def test_taste_kernel_is_blended_and_survives_a_reload() -> None:
    """With ``taste``, the model has a taste model over its items' vectors (a wide modality
    cut to its principal directions), its kernel joins the blends, and a model rebuilt
    without fitting gets the same item features and scores once the saved state is loaded."""
    from graphfusion.models.neighbourhood import KERNELS

    data = _graph()
    g = torch.Generator().manual_seed(1)
    data["Product"].image_vec = torch.randn(9, 600, generator=g)  # wider than 512: projected
    data["User", "INTERACTED", "Product"].edge_attr = torch.rand(20, 2, generator=g)
    torch.manual_seed(0)
    model = FusionGNN(data, dim=8, neighbourhood_rank=4, taste=True)
    assert model.taste is not None and model.taste_inputs is not None
    assert "taste" in model.available and "taste" not in model.neighbourhood.available  # type: ignore[union-attr]
    assert model.taste_inputs.projected == ["image_vec"]
    assert model.taste.features.shape == (9, 12 + min(128, 600))
    with torch.no_grad():
        model.taste.bias.copy_(torch.randn(9, generator=g))
    model.eval()
    users = torch.arange(6)
    with torch.no_grad():
        plain = model.scores(users)
        taste = model.kernels(users, names=["taste"])["taste"]
        model.set_blend([0.0] * 5 + [1.0], [0.0] * len(KERNELS))
        blended = model.scores(users)
    assert taste.shape == (6, 9) and not torch.allclose(blended, plain)
    torch.manual_seed(5)
    again = FusionGNN(data, dim=8, neighbourhood_rank=4, taste=True, fit_neighbourhood=False)
    assert again.taste is not None and not torch.equal(again.taste.features, model.taste.features)
    again.load_state_dict(model.state_dict())
    again.eval()
    assert torch.equal(again.taste.features, model.taste.features)
    with torch.no_grad():
        torch.testing.assert_close(again.scores(users), blended)
    without = FusionGNN(data, dim=8, neighbourhood_rank=4)
    assert without.taste is None and "taste" not in without.available
    with pytest.raises(ValidationError, match="taste"):
        without.set_blend([0.0] * 5 + [1.0], [0.0] * len(KERNELS))
    with pytest.raises(ValidationError, match="taste"):
        without.kernels(users, names=["taste"])


def test_corrupt_graphs_are_refused_with_a_clear_error() -> None:
    """Features of the wrong shape and edges to nodes that do not exist are refused when the
    model is built (an edge to a missing node made an unchecked sparse matrix that corrupted
    the heap: the process died at the first scores)."""
    wrong_rows = _graph()
    wrong_rows["Product"].text_vec = torch.randn(5, 12)
    with pytest.raises(ValidationError, match=r"Product\.text_vec"):
        FusionGNN(wrong_rows)
    flat = _graph()
    flat["Product"].text_vec = torch.randn(9)
    with pytest.raises(ValidationError, match=r"Product\.text_vec"):
        FusionGNN(flat)
    empty = _graph()
    empty["Brand"].text_vec = torch.randn(3, 0)
    with pytest.raises(ValidationError, match=r"Brand\.text_vec"):
        FusionGNN(empty)
    for et, bad in [
        (("Brand", "rev_OF_BRAND", "Product"), torch.tensor([[0, 7], [0, 1]])),
        (("Product", "OF_BRAND", "Brand"), torch.tensor([[0, 1], [0, -1]])),
        (("Product", "OF_BRAND", "Brand"), torch.tensor([[0.0, 1.0], [0.0, 1.0]])),
        (("Product", "OF_BRAND", "Brand"), torch.tensor([0, 1])),
    ]:
        data = _graph()
        data[et].edge_index = bad
        with pytest.raises(ValidationError, match=et[1]):
            FusionGNN(data, context_layers=2)


def test_scores_of_repeated_users_are_their_rows_and_unknown_users_are_refused() -> None:
    """``scores(users)`` with a user twice gives that user's row twice, blend included (the
    sharp kernel gave the first copy the row of a user without products); a user row out of
    range is refused (-1 scored the last user)."""
    from graphfusion.models.neighbourhood import KERNELS

    torch.manual_seed(0)
    model = FusionGNN(_graph(), dim=8, neighbourhood_rank=4).eval()
    weights = [1.0 if k in model.available else 0.0 for k in KERNELS]
    model.set_blend(weights, weights)
    with torch.no_grad():
        for fn in (model.scores, model.cold_scores):
            each = fn(torch.arange(6))
            torch.testing.assert_close(fn(torch.tensor([2, 2, 5, 2])), each[[2, 2, 5, 2]])
            for users in (torch.tensor([-1]), torch.tensor([6]), torch.tensor([[0, 1]])):
                with pytest.raises(ValidationError, match="users"):
                    fn(users)
        with pytest.raises(ValidationError, match="users"):
            model.kernels(torch.tensor([6]))


def test_vectors_of_huge_or_tiny_values_are_not_lost() -> None:
    """Text vectors are L2-normalized, so their scale does not matter; at 1e30 or 1e-30 the
    squares overflowed or underflowed float32 and every product's text became zeros: the
    model was the one built without text."""
    torch.manual_seed(0)
    plain = FusionGNN(_graph(), dim=8).eval()
    for scale in (1e30, 1e-30):
        data = _graph()
        data["Product"].text_vec = data["Product"].text_vec * scale
        torch.manual_seed(0)
        scaled = FusionGNN(data, dim=8).eval()
        with torch.no_grad():
            torch.testing.assert_close(scaled.content()["Product"], plain.content()["Product"])
            got = scaled.scores(torch.arange(6))
            assert bool(torch.isfinite(got).all())
            torch.testing.assert_close(got, plain.scores(torch.arange(6)))


def test_blend_weights_must_be_finite() -> None:
    """A NaN weight passed the ``>= 0`` check (NaN < 0 is False) and made every score NaN."""
    from graphfusion.models.neighbourhood import KERNELS

    model = FusionGNN(_graph(), dim=8, neighbourhood_rank=4)
    zero = [0.0] * len(KERNELS)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValidationError, match="finite"):
            model.set_blend([bad, *zero[1:]], zero)
        with pytest.raises(ValidationError, match="finite"):
            model.set_blend(zero, [bad, *zero[1:]])
    model.set_blend([0.5, *zero[1:]], zero)
    with torch.no_grad():
        assert bool(torch.isfinite(model.eval().scores(torch.arange(6))).all())


def test_behaviour_and_profile_features_must_be_standardized() -> None:
    """Read as they are, a profile of 1e30 made the loss and every score NaN; such features
    (or infinite ones) are refused. A NaN counts as 0."""
    for attr, node, n in (("profile_vec", "User", 6), ("behaviour_vec", "Product", 9)):
        for bad in (1e30, math.inf):
            data = _graph()
            x = torch.randn(n, 3)
            x[0, 0] = bad
            data[node][attr] = x
            with pytest.raises(ValidationError, match=f"{node}.{attr}.*standardized"):
                FusionGNN(data, dim=8)
        data = _graph()
        x = torch.randn(n, 3)
        x[0, 0] = math.nan
        data[node][attr] = x
        torch.manual_seed(0)
        model = FusionGNN(data, dim=8).eval()
        with torch.no_grad():
            assert bool(torch.isfinite(model.scores(torch.arange(6))).all())
