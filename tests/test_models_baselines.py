"""Baselines: shapes, determinism, values on small random graphs, and BPR learns."""

from __future__ import annotations

import pytest
import torch

from graphfusion.errors import ValidationError
from graphfusion.evaluate import full_ranking_metrics
from graphfusion.models import MF, LightGCN, Popularity, bpr_loss, normalized_adjacency
from graphfusion.models.baselines import sparse_csr


def _edges(num_users: int = 8, num_items: int = 12, per_user: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    users = torch.arange(num_users).repeat_interleave(per_user)
    items = torch.randint(0, num_items, (num_users * per_user,), generator=g)
    return torch.stack([users, items])


def test_normalized_adjacency_values() -> None:
    # user 0 - item 0, user 0 - item 1, user 1 - item 1
    adj = normalized_adjacency(torch.tensor([[0, 0, 1], [0, 1, 1]]), 2, 2).to_dense()
    deg = torch.tensor([2.0, 1.0, 1.0, 2.0])  # u0, u1, i0, i1
    expected = torch.zeros(4, 4)
    for u, i in [(0, 0), (0, 1), (1, 1)]:
        expected[u, 2 + i] = expected[2 + i, u] = 1 / (deg[u] * deg[2 + i]).sqrt()
    assert torch.allclose(adj, expected)
    # a repeated interaction counts once
    again = normalized_adjacency(torch.tensor([[0, 0, 0, 1], [0, 1, 1, 1]]), 2, 2).to_dense()
    assert torch.allclose(again, expected)


def test_sparse_csr_sums_repeated_cells() -> None:
    m = sparse_csr(torch.tensor([[0, 1, 0], [2, 0, 2]]), torch.tensor([1.0, 2.0, 3.0]), (2, 3))
    assert m.layout == torch.sparse_csr
    assert torch.equal(m.to_dense(), torch.tensor([[0.0, 0.0, 4.0], [2.0, 0.0, 0.0]]))


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_lightgcn_shapes_and_propagation(layers: int) -> None:
    edges = _edges()
    torch.manual_seed(1)
    model = LightGCN(edges, 8, 12, dim=16, num_layers=layers)
    u, i = model.embeddings()
    assert u.shape == (8, 16) and i.shape == (12, 16)
    assert model.scores(torch.tensor([0, 3])).shape == (2, 12)
    dense = model.adj.to_dense()
    x = model.embedding.weight
    layers_out = [x]
    for _ in range(layers):
        layers_out.append(dense @ layers_out[-1])
    expected = torch.stack(layers_out).mean(0)
    assert torch.allclose(torch.cat([u, i]), expected, atol=1e-6)


def test_determinism_by_seed() -> None:
    edges = _edges()
    torch.manual_seed(7)
    a = LightGCN(edges, 8, 12).scores(torch.arange(8))
    torch.manual_seed(7)
    b = LightGCN(edges, 8, 12).scores(torch.arange(8))
    assert torch.equal(a, b)
    torch.manual_seed(7)
    m1 = MF(8, 12).scores(torch.arange(8))
    torch.manual_seed(7)
    assert torch.equal(m1, MF(8, 12).scores(torch.arange(8)))


def test_popularity() -> None:
    edges = torch.tensor([[0, 1, 2, 2], [3, 3, 3, 1]])
    scores = Popularity(edges, 3, 5).scores(torch.tensor([0, 2]))
    assert scores.tolist() == [[0, 1, 0, 3, 0], [0, 1, 0, 3, 0]]


def test_bad_edges() -> None:
    with pytest.raises(ValidationError, match="outside"):
        LightGCN(torch.tensor([[0], [12]]), 8, 12)
    with pytest.raises(ValidationError, match="shape"):
        Popularity(torch.tensor([0, 1, 2]), 3, 3)


@pytest.mark.parametrize("kind", ["mf", "lightgcn"])
def test_bpr_training_learns_a_planted_structure(kind: str) -> None:
    # two groups of users, each liking its own half of the items
    g = torch.Generator().manual_seed(0)
    num_users, num_items = 40, 20
    group = torch.arange(num_users) % 2
    train_u, train_i, test = [], [], []
    for u in range(num_users):
        pool = torch.arange(10) + 10 * group[u]
        chosen = pool[torch.randperm(10, generator=g)[:6]]
        train_u += [u] * 4
        train_i += chosen[:4].tolist()
        test.append(chosen[4:].tolist())
    edges = torch.tensor([train_u, train_i])
    torch.manual_seed(0)
    model = (
        MF(num_users, num_items, 16)
        if kind == "mf"
        else LightGCN(edges, num_users, num_items, 16, 2)
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        neg = torch.randint(0, num_items, (edges.shape[1],), generator=g)
        u_emb, i_emb = model.embeddings()
        loss = bpr_loss(edges[0], edges[1], neg, u_emb, i_emb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        scores = model.scores(torch.arange(num_users)).numpy()
    train_items = [train_i[4 * u : 4 * u + 4] for u in range(num_users)]
    learned = full_ranking_metrics(scores, train_items, test, ks=(5,))
    popular = full_ranking_metrics(
        Popularity(edges, num_users, num_items).scores(torch.arange(num_users)).numpy(),
        train_items, test, ks=(5,),
    )  # fmt: skip
    assert learned["recall@5"] > popular["recall@5"] + 0.2


def test_normalized_adjacency_matches_a_dense_computation_with_isolated_nodes() -> None:
    """D^-1/2 A D^-1/2 computed by hand: a user and an item without interactions get zero
    rows and columns (not inf or NaN), a repeated pair counts once."""
    edges = torch.tensor([[0, 0, 0, 2, 2], [1, 3, 3, 3, 0]])  # user 1 and item 2 isolated
    num_users, num_items = 3, 4
    dense = torch.zeros(num_users + num_items, num_users + num_items)
    for u, i in edges.t().tolist():
        dense[u, num_users + i] = dense[num_users + i, u] = 1.0
    deg = dense.sum(1)
    inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    expected = inv[:, None] * dense * inv[None, :]
    got = normalized_adjacency(edges, num_users, num_items).to_dense()
    assert torch.allclose(got, expected) and bool(torch.isfinite(got).all())
    assert not got[1].any() and not got[num_users + 2].any()
    model = LightGCN(edges, num_users, num_items, dim=4, num_layers=2)
    assert bool(torch.isfinite(model.scores(torch.arange(num_users))).all())


def test_edges_of_a_wrong_type_or_sizes_below_zero_are_refused() -> None:
    with pytest.raises(ValidationError, match="integer"):
        normalized_adjacency(torch.tensor([[0.0, 1.0], [0.0, 1.0]]), 2, 2)
    with pytest.raises(ValidationError, match="integer"):
        Popularity(torch.tensor([[0.0], [1.0]]), 2, 2)
    with pytest.raises(ValidationError, match=">= 0"):
        LightGCN(torch.zeros(2, 0, dtype=torch.long), -1, 3)
    with pytest.raises(ValidationError, match=">= 0"):
        Popularity(torch.zeros(2, 0, dtype=torch.long), 3, -1)


@pytest.mark.parametrize("kind", ["popularity", "mf", "lightgcn"])
def test_scores_refuse_users_outside_the_model(kind: str) -> None:
    """A negative row would silently score the last user; a float or 2-D one is not users."""
    edges = _edges()
    model: Popularity | MF | LightGCN = (
        Popularity(edges, 8, 12) if kind == "popularity"
        else MF(8, 12, 4) if kind == "mf" else LightGCN(edges, 8, 12, 4)
    )  # fmt: skip
    assert model.scores(torch.tensor([7, 0])).shape == (2, 12)
    assert model.scores(torch.tensor([], dtype=torch.long)).shape == (0, 12)
    for users in (torch.tensor([-1]), torch.tensor([8]), torch.tensor([0.0]), torch.tensor([[0]])):
        with pytest.raises(ValidationError, match="users"):
            model.scores(users)


def test_bpr_loss_refuses_an_empty_batch() -> None:
    emb = torch.randn(3, 4)
    empty = torch.tensor([], dtype=torch.long)
    with pytest.raises(ValidationError, match="empty"):
        bpr_loss(empty, empty, empty, emb, emb)  # its mean would be NaN
    with pytest.raises(ValidationError, match="empty"):
        MF(3, 3, 4).loss(empty, empty, empty, 1e-4)


def test_sparse_csr_refuses_indices_outside_its_shape() -> None:
    """Built unchecked, such a matrix corrupted the heap and killed the process."""
    for indices in (torch.tensor([[0, 5], [0, 1]]), torch.tensor([[0, 1], [0, -1]])):
        with pytest.raises(ValidationError, match="outside"):
            sparse_csr(indices, torch.ones(2), (3, 3))
