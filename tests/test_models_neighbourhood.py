"""The content-neighbourhood kernel and its blend into the fusion model's scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch_geometric.data import HeteroData

from graphfusion.errors import ValidationError
from graphfusion.models import FusionGNN
from graphfusion.models.neighbourhood import (
    ContentNeighbourhood,
    blend,
    blend_standardized,
    item_modalities,
    kernel_scores,
    price_levels,
    profiles,
    sharp_kernel,
    standardize,
)


def _clusters(n_items: int = 40, width: int = 16) -> tuple[HeteroData, torch.Tensor]:
    """Products in 4 clusters, which their text vectors show clearly and their photos
    vaguely; user u buys 3 products of cluster u % 4."""
    g = torch.Generator().manual_seed(0)
    centres = 3 * torch.randn(4, width, generator=g)
    cluster = torch.arange(n_items) % 4
    data = HeteroData()
    data["User"].num_nodes = 8
    data["Product"].num_nodes = n_items
    data["Product"].text_vec = centres[cluster] + torch.randn(n_items, width, generator=g)
    data["Image"].num_nodes = n_items
    photo = torch.randn(4, 5, generator=g)
    data["Image"].image_vec = photo[cluster] + 0.7 * torch.randn(n_items, 5, generator=g)
    data["Product", "HAS_IMAGE", "Image"].edge_index = torch.stack([torch.arange(n_items)] * 2)
    users = torch.arange(8).repeat_interleave(3)
    items = torch.stack([torch.nonzero(cluster == u % 4).flatten()[:3] for u in range(8)]).flatten()
    data["User", "INTERACTED", "Product"].edge_index = torch.stack([users, items])
    return data, cluster


def test_modalities_are_unit_rows_and_photos_come_through_has_image() -> None:
    data, _ = _clusters()
    data["Product", "HAS_IMAGE", "Image"].edge_index = torch.tensor([[0, 0], [0, 1]])
    mods = item_modalities(data)
    assert set(mods) == {"text_vec", "image_vec"}
    assert torch.allclose(mods["text_vec"].norm(dim=1), torch.ones(40))
    # product 0 has two photos (their mean), the others none (zeros)
    want = torch.nn.functional.normalize(
        torch.nn.functional.normalize(data["Image"].image_vec[:2], dim=1).sum(0), dim=0
    )
    assert torch.allclose(mods["image_vec"][0], want, atol=1e-6)
    assert not mods["image_vec"][1:].any()


def test_profiles_are_the_mean_of_each_users_items() -> None:
    items = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]])
    pairs = torch.tensor([[0, 0, 0, 2], [0, 1, 1, 2]])  # user 0's repeated pair counts once
    got = profiles(pairs, items, 3)
    assert torch.equal(got, torch.tensor([[0.5, 1.0], [0.0, 0.0], [4.0, 4.0]]))


def test_profiles_weigh_each_pair_by_its_strength() -> None:
    items = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]])
    pairs = torch.tensor([[0, 0, 0, 2], [0, 1, 1, 2]])
    # user 0: product 0 weighs 1, product 1 (repeated: its greatest strength) 3
    got = profiles(pairs, items, 3, torch.tensor([1.0, 2.0, 3.0, 5.0]))
    assert torch.allclose(got, torch.tensor([[0.25, 1.5], [0.0, 0.0], [4.0, 4.0]]))
    # the same strength everywhere is the plain mean
    same = profiles(pairs, items, 3, torch.full((4,), 4.0))
    assert torch.allclose(same, profiles(pairs, items, 3))
    for bad in (torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 0.0, 1.0, 1.0]),
                torch.tensor([1.0, float("nan"), 1.0, 1.0])):  # fmt: skip
        with pytest.raises(ValidationError, match="strength"):
            profiles(pairs, items, 3, bad)
    assert torch.equal(profiles(pairs[:, :0], items, 2, torch.zeros(0)), torch.zeros(2, 2))


def test_fusion_kernels_follow_the_interactions_edge_weight() -> None:
    """A user who bought from two clusters is drawn to the one their strong interactions are
    with, when the graph carries ``edge_weight``."""
    data, cluster = _clusters()
    ei = data["User", "INTERACTED", "Product"].edge_index
    other = torch.nonzero(cluster == 1).flatten()[:3]  # user 0 (cluster 0) also has these
    data["User", "INTERACTED", "Product"].edge_index = torch.cat(
        [ei, torch.stack([torch.zeros(3, dtype=torch.long), other])], 1
    )
    strength = torch.ones(ei.shape[1] + 3)
    strength[-3:] = 10.0
    plain = FusionGNN(data, dim=8, num_layers=1, neighbourhood_rank=4)
    data["User", "INTERACTED", "Product"].edge_weight = strength
    weighted = FusionGNN(data, dim=8, num_layers=1, neighbourhood_rank=4)
    assert plain.neighbourhood is not None and weighted.neighbourhood is not None
    one = torch.tensor([0])
    top_plain = plain.neighbourhood.kernels(one, names=["content"])["content"][0].topk(10).indices
    top_weighted = weighted.neighbourhood.kernels(one, names=["content"])["content"][0].topk(10)
    top_weighted = top_weighted.indices
    assert (cluster[top_weighted] == 1).all()
    assert (cluster[top_plain] == 0).sum() > 0


def test_kernel_ranks_the_users_cluster_first() -> None:
    data, cluster = _clusters()
    hood = ContentNeighbourhood(
        item_modalities(data), data["User", "INTERACTED", "Product"].edge_index, 8, rank=4
    )
    scores = hood.kernels(torch.arange(8), names=["content"])["content"]
    assert scores.shape == (8, 40)
    for u in range(8):
        top = scores[u].topk(10).indices
        assert (cluster[top] == u % 4).all(), f"user {u}"
    # the kernel vectors: rank 4 per modality (the photo has only 5 dims), scaled by 1/sqrt(2)
    _, vectors = hood.vectors()
    assert vectors.shape == (40, 8)


def test_encode_matches_the_fitted_items_and_checks_widths() -> None:
    data, _ = _clusters()
    mods = item_modalities(data)
    hood = ContentNeighbourhood(mods, data["User", "INTERACTED", "Product"].edge_index, 8)
    _, vectors = hood.vectors()
    assert torch.allclose(hood.encode({k: v[:3] for k, v in mods.items()}), vectors[:3])
    # a missing modality counts as a zero vector
    text = mods["text_vec"][:1]
    assert torch.equal(
        hood.encode({"text_vec": text}),
        hood.encode({"text_vec": text, "image_vec": torch.zeros(1, 5)}),
    )
    with pytest.raises(ValidationError, match="text_vec must be"):
        hood.encode({"text_vec": torch.zeros(2, 3)})
    with pytest.raises(ValidationError, match="rank"):
        ContentNeighbourhood(mods, data["User", "INTERACTED", "Product"].edge_index, 8, rank=0)


def test_saved_directions_replace_fitted_ones_of_another_shape() -> None:
    data, _ = _clusters()
    edges = data["User", "INTERACTED", "Product"].edge_index
    trained = ContentNeighbourhood(item_modalities(data), edges, 8, rank=3)
    saved = torch.tensor([[0.5, 0.25, 1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    trained.weight.copy_(saved)
    later = ContentNeighbourhood(item_modalities(data), edges, 8, rank=6)
    assert later.state_dict()["basis_text_vec"].shape == (16, 6)
    later.load_state_dict(trained.state_dict())
    assert later.state_dict()["basis_text_vec"].shape == (16, 3)
    assert torch.equal(later.weight, saved)
    assert torch.allclose(later.vectors()[1], trained.vectors()[1])
    # without a fit (a checkpoint's directions are loaded next): empty until loaded
    bare = ContentNeighbourhood(item_modalities(data), edges, 8, fit=False)
    assert bare.state_dict()["basis_text_vec"].shape == (16, 0)
    bare.load_state_dict(trained.state_dict())
    assert torch.allclose(bare.vectors()[1], trained.vectors()[1])
    # a weight saved before the learned kernel (one per path) gets zero columns for the others
    oldest = {**trained.state_dict(), "weight": torch.tensor([0.5, 1.0])}
    bare.load_state_dict(oldest)
    assert torch.equal(bare.weight, torch.tensor([[0.5] + [0.0] * 5, [1.0] + [0.0] * 5]))
    # and one saved with the content and learned kernels only, for the sharp, price, followees
    older = {**trained.state_dict(), "weight": torch.tensor([[0.5, 0.25], [1.0, 2.0]])}
    bare.load_state_dict(older)
    assert torch.equal(bare.weight, torch.tensor([[0.5, 0.25, 0, 0, 0, 0], [1.0, 2.0, 0, 0, 0, 0]]))
    # and one saved before the taste kernel
    weight = torch.tensor([[0.5, 0, 1, 0, 2.0], [0, 0, 0, 0, 1.0]])
    five = {**trained.state_dict(), "weight": weight}
    bare.load_state_dict(five)
    assert torch.equal(bare.weight, torch.tensor([[0.5, 0, 1, 0, 2, 0], [0, 0, 0, 0, 1, 0]]))


def test_learned_kernel_is_the_mean_similarity_to_the_users_items() -> None:
    data, _ = _clusters()
    edges = data["User", "INTERACTED", "Product"].edge_index
    hood = ContentNeighbourhood(item_modalities(data), edges, 8, rank=3)
    vectors = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    users = torch.tensor([0, 5])
    got = hood.kernels(users, vectors, ["learned"])["learned"]
    for row, u in enumerate(users.tolist()):
        mine = sorted(set(edges[1, edges[0] == u].tolist()))
        want = torch.stack([vectors[mine] @ vectors[i] for i in range(40)]).mean(1)
        assert torch.allclose(got[row], want, atol=1e-5)


def test_blend_standardizes_each_row() -> None:
    model = torch.tensor([[1.0, 2.0, 3.0], [10.0, 0.0, 5.0]])
    kernel = torch.tensor([[3.0, 2.0, 1.0], [0.0, 0.0, 0.0]])
    assert torch.equal(blend(model, [kernel], [0.0]), model)
    out = blend(model, [kernel], [1.0])
    assert torch.allclose(out[0], torch.zeros(3))  # opposite orders cancel out
    # a constant kernel row changes nothing but the scale of the model's row
    assert out[1].argsort().tolist() == model[1].argsort().tolist()
    # scaling either input does not change the blend
    assert torch.allclose(blend(100 * model, [0.01 * kernel], [1.0]), out, atol=1e-6)
    # kernels add up, each with its weight; a zero weight leaves its kernel out
    other = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]])
    two = blend(model, [kernel, other], [1.0, 0.5])
    z_other = (other - other.mean(1, keepdim=True)) / other.std(1, keepdim=True, correction=0)
    assert torch.allclose(two, out + 0.5 * z_other, atol=1e-6)
    assert torch.equal(blend(model, [kernel, other], [1.0, 0.0]), out)
    with pytest.raises(ValidationError, match="2 kernels but 1 weights"):
        blend(model, [kernel, other], [1.0])


def test_blend_of_standardized_parts_is_the_blend() -> None:
    gen = torch.Generator().manual_seed(0)
    model, a, b = (torch.randn(5, 30, generator=gen) * 7 + 3 for _ in range(3))
    parts = standardize(model), [standardize(a), standardize(b)]
    for weights in ([1.0, 0.5], [0.0, 2.0], [0.125, 0.0]):
        assert torch.allclose(blend_standardized(*parts, weights), blend(model, [a, b], weights))
    # every weight zero: the standardized scores, which rank as the model's scores do
    zero = blend_standardized(*parts, [0.0, 0.0])
    assert torch.equal(zero.argsort(1), model.argsort(1)) and torch.equal(zero, parts[0])
    assert zero is not parts[0]  # the parts are left as they were, for the next weights
    assert torch.allclose(standardize(torch.ones(2, 4)), torch.zeros(2, 4))


def test_fusion_model_blends_only_when_weighted() -> None:
    data, _ = _clusters()
    data["Product", "rev_INTERACTED", "User"].edge_index = data[
        "User", "INTERACTED", "Product"
    ].edge_index.flip(0)
    torch.manual_seed(0)
    model = FusionGNN(data, dim=8).eval()
    users = torch.arange(8)
    plain, content = model.scores(users), model.cold_scores(users)
    hood = model.neighbourhood
    assert hood is not None and hood.names == ["image_vec", "text_vec"]
    # no prices and no follows in this graph: those two kernels are not there, nor the taste
    # model's (the fusion model's own, without ``taste``)
    assert hood.available == ("content", "learned", "sharp") == model.available
    model.set_blend([0.5, 0.0, 0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    kernel = hood.kernels(users, names=["content"])["content"]
    assert torch.allclose(model.scores(users), blend(plain, [kernel], [0.5]))
    assert torch.allclose(model.cold_scores(users), blend(content, [kernel], [2.0]))
    # the learned kernel: over the fused vectors for scores, the content ones for cold scores
    model.set_blend([0.5, 1.0, 0.25, 0.0, 0.0, 0.0], [0.0, 0.25, 0.0, 0.0, 0.0, 0.0])
    fused, own = model.embeddings()[1], model.content()["Product"]
    learned = hood.kernels(users, fused, ["learned"])["learned"]
    sharp = model.kernels(users, names=["sharp"])["sharp"]
    assert torch.allclose(
        model.scores(users), blend(plain, [kernel, learned, sharp], [0.5, 1.0, 0.25])
    )
    assert torch.allclose(model.kernels(users, fused)["learned"], learned)
    mine = hood.kernels(users, own, ["learned"])["learned"]
    assert torch.allclose(model.cold_scores(users), blend(content, [kernel, mine], [0.0, 0.25]))
    assert "neighbourhood.weight" in model.state_dict()
    with pytest.raises(ValidationError, match=">= 0"):
        model.set_blend([-1.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0] * 6)
    with pytest.raises(ValidationError, match="6 numbers"):
        model.set_blend([1.0], [0.0])
    with pytest.raises(ValidationError, match="no price kernel"):
        model.set_blend([0.0, 0.0, 0.0, 1.0, 0.0, 0.0], [0.0] * 6)
    with pytest.raises(ValidationError, match="no followees kernel"):
        model.kernels(users, names=["followees"])
    off = FusionGNN(data, dim=8, neighbourhood_rank=0)
    assert off.neighbourhood is None
    off.set_blend([0.0] * 6, [0.0] * 6)
    with pytest.raises(ValidationError, match="no neighbourhood kernel"):
        off.set_blend([1.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0] * 6)
    with pytest.raises(ValidationError, match="no neighbourhood kernel"):
        off.kernels(users, fused)


def test_cold_weights_are_chosen_on_the_validation_cold_products() -> None:
    """Given validation cold products, the content-only blend weights are chosen by how the
    cold products are ranked among themselves: a content kernel that ranks every user's cluster
    first gets the largest weight when the users' held-out cold products are of their cluster,
    and a smaller one when they are of another cluster."""
    from graphfusion.models.neighbourhood import KERNELS, WEIGHTS
    from graphfusion.train import _fit_blend

    data, cluster = _clusters(n_items=200)
    data["Product", "rev_INTERACTED", "User"].edge_index = data[
        "User", "INTERACTED", "Product"
    ].edge_index.flip(0)
    torch.manual_seed(0)
    model = FusionGNN(data, dim=8)
    seen = [
        sorted(set(data["User", "INTERACTED", "Product"].edge_index[1, 3 * u : 3 * u + 3].tolist()))
        for u in range(8)
    ]
    warm = [[int(torch.nonzero(cluster == u % 4).flatten()[3])] for u in range(8)]
    cold = torch.arange(100, 200).numpy()

    def held(shift: int) -> list[list[int]]:
        return [[int(i) for i in cold if cluster[i] == (u + shift) % 4][:5] for u in range(8)]

    own = _fit_blend(model, np.arange(8), seen, warm, (cold, held(0)))
    other = _fit_blend(model, np.arange(8), seen, warm, (cold, held(1)))
    assert own["cold content"] == max(WEIGHTS) and other["cold content"] < own["cold content"]
    # the weights of the model's own scores are chosen on warm validation, whatever the cold
    assert [own[f"warm {k}"] for k in KERNELS] == [other[f"warm {k}"] for k in KERNELS]
    assert model.neighbourhood is not None
    assert model.neighbourhood.weight[1].tolist() == [other[f"cold {k}"] for k in KERNELS]


def test_sharp_kernel_prefers_a_product_close_to_one_of_the_users_products() -> None:
    # user 0 has a = (1, 0) and b = (0, 1), alike strength; c repeats a, d lies between them;
    # user 1 has nothing
    vecs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    pairs = torch.tensor([[0, 0], [0, 1]])
    got = sharp_kernel(torch.tensor([0, 1]), pairs, 2, vecs, beta=3.0)
    c = math.log((1.0 + math.exp(-3.0)) / 2.0) / 3.0
    d = math.sqrt(0.5) - 1.0
    assert got[0, 2].item() == pytest.approx(c, rel=1e-5)
    assert got[0, 3].item() == pytest.approx(d, rel=1e-5)
    assert got[0, 2] > got[0, 3]  # the mean likeness ranks them the other way (0.5 < 0.71)
    assert torch.unique(got[1]).numel() == 1  # a user without products: a constant row
    # strengths count: a heavier b moves c below d; only the users asked for are scored
    heavier = sharp_kernel(torch.tensor([0]), pairs, 2, vecs, torch.tensor([1.0, 9.0]), 3.0)
    assert heavier.shape == (1, 4) and heavier[0, 2] < heavier[0, 3]
    # in chunks of products, the same (the chunk bounds the memory, not the result)
    many = torch.randn(50, 6, generator=torch.Generator().manual_seed(1))
    edges = torch.stack([torch.arange(40) % 7, torch.arange(40)])
    whole = sharp_kernel(torch.arange(7), edges, 7, many)
    import graphfusion.models.neighbourhood as hood

    chunk, hood.CHUNK = hood.CHUNK, 3
    try:
        assert torch.allclose(sharp_kernel(torch.arange(7), edges, 7, many), whole, atol=1e-6)
    finally:
        hood.CHUNK = chunk


def test_price_levels_are_measured_within_alike_products() -> None:
    # two kinds of product (alike text within a kind), prices 10x apart, three levels each
    text = torch.tensor([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3)
    price = torch.tensor([6.0, 10.0, 18.0, 60.0, 100.0, 180.0]).log()
    got = price_levels(price, text, price, text, neighbours=2)
    want = [math.log(p) - sum(math.log(x) for x in o) / 2 for p, o in (
        (6, [10, 18]), (10, [6, 18]), (18, [6, 10]),
        (60, [100, 180]), (100, [60, 180]), (180, [60, 100]))]  # fmt: skip
    assert got.tolist() == pytest.approx(want, rel=1e-5)
    # the cheap one of the dear kind is low, the dear one of the cheap kind high
    assert got[3] < 0 < got[2]
    # an unknown price: level 0, and left out of the others' comparisons
    unknown = price.clone()
    unknown[1] = float("nan")
    got = price_levels(unknown, text, unknown, text, neighbours=1)
    assert got[1] == 0
    assert got[0].item() == pytest.approx(math.log(6) - math.log(18), rel=1e-5)
    assert got[2].item() == pytest.approx(math.log(18) - math.log(6), rel=1e-5)
    # a new product is measured against the reference products, all of them
    new = price_levels(torch.tensor([math.log(20.0)]), text[:1], price, text, 3,
                       exclude_self=False)  # fmt: skip
    assert new.item() == pytest.approx(math.log(20) - math.log(6 * 10 * 18) / 3, rel=1e-5)
    with pytest.raises(ValidationError, match="exclude_self"):
        price_levels(price[:1], text[:1], price, text)


def test_price_and_followees_kernels() -> None:
    """The price kernel is the user's mean price level times the product's; the followees
    kernel the mean content profile of whom the user follows, and the fusion model has both
    when its graph gives prices and follows."""
    data, cluster = _clusters()
    edges = data["User", "INTERACTED", "Product"].edge_index
    g = torch.Generator().manual_seed(2)
    log_price = torch.rand(40, generator=g) * 3
    log_price[5] = float("nan")
    follows = torch.tensor([[0, 0, 6], [1, 2, 4]])  # 0 follows 1 and 2, 6 follows 4
    mods = item_modalities(data)
    hood = ContentNeighbourhood(mods, edges, 8, rank=4, log_price=log_price, follows=follows)
    assert hood.available == ("content", "learned", "sharp", "price", "followees")
    users = torch.arange(8)
    got = hood.kernels(users, names=["price", "followees"])
    levels = hood.levels()
    assert levels[5] == 0 and levels.shape == (40,)
    for u in (0, 3):
        mine = edges[1, edges[0] == u]
        assert torch.allclose(got["price"][u], levels[mine].mean() * levels, atol=1e-6)
    profile, vecs = hood.vectors()
    assert torch.allclose(got["followees"][0], (profile[1] + profile[2]) / 2 @ vecs.t(), atol=1e-5)
    assert torch.allclose(got["followees"][6], profile[4] @ vecs.t(), atol=1e-5)
    assert not got["followees"][3].any()  # follows no one
    # user 6 follows user 4, whose cluster (0) is then ranked first
    assert (cluster[got["followees"][6].topk(10).indices] == 0).all()
    # a new product's level is measured against the neighbourhood's products
    new = hood.levels_of(log_price[:3], {k: v[:3] for k, v in mods.items()})
    assert new.shape == (3,) and not torch.allclose(new, levels[:3])  # it meets itself now
    # the fusion model passes the graph's log_price and FOLLOWS edges to its neighbourhood
    data["Product"].log_price = log_price
    data["User", "FOLLOWS", "User"].edge_index = follows
    model = FusionGNN(data, dim=8, neighbourhood_rank=4)
    assert model.neighbourhood is not None
    assert model.neighbourhood.available == hood.available
    assert torch.allclose(model.kernels(users, names=["price"])["price"], got["price"])
    for bad in ({"log_price": log_price[:3]}, {"follows": torch.tensor([[0], [8]])},
                {"follows": torch.tensor([0, 1])}):  # fmt: skip
        with pytest.raises(ValidationError):
            ContentNeighbourhood(mods, edges, 8, rank=4, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="unknown kernel"):
        kernel_scores(["nearest"], users, edges, 8, vecs)
    with pytest.raises(ValidationError, match="learned kernel needs"):
        kernel_scores(["learned"], users, edges, 8, vecs)


def test_search_weights_is_a_coordinate_search_that_scores_each_weighting_once() -> None:
    from graphfusion.models.neighbourhood import WEIGHTS, search_weights

    calls: list[tuple[float, ...]] = []

    def score(w: dict[str, float]) -> float:
        calls.append(tuple(w.values()))
        # best at a = 0.5; b helps only once a is at least 0.5, and every b >= 1 ties
        return -abs(w["a"] - 0.5) + (min(w["b"], 1.0) if w["a"] >= 0.5 else -w["b"])

    # b is searched first, while a is still 0, so only a second pass moves it
    assert search_weights(score, {"b": 0.0, "a": 0.0}, rounds=1) == {"b": 0.0, "a": 0.5}
    calls.clear()
    got = search_weights(score, {"b": 0.0, "a": 0.0}, rounds=10)
    assert got == {"b": 1.0, "a": 0.5}  # the smaller of the tied b
    assert len(calls) == len(set(calls))  # memoized
    # pass 1: 6 values of b, then 5 new of a; pass 2: 5 new of b, 4 new of a (b = 1 with
    # a = 0 was scored in pass 1); pass 3: none new, nothing changes, the search stops
    assert len(calls) == len(WEIGHTS) + 2 * (len(WEIGHTS) - 1) + (len(WEIGHTS) - 2)
    assert set(search_weights(lambda w: 0.0, {"x": 1.0}, 2).values()) == {min(WEIGHTS)}


def test_a_constant_row_standardizes_to_zero_whatever_its_value() -> None:
    """As :func:`graphfusion.light.standard` does: a user whose scores are all equal adds
    nothing to a blend. The mean of a row of large equal values is off by its rounding, which
    divided by the fallback 1 left a huge constant (7.6e22 for 1e30) that swamped the
    model's standardized scores in the blend (every product tied)."""
    from graphfusion.light import standard

    for value in (0.1, -7.77, 1e30, 1e-30, 3e38):
        row = torch.full((2, 1001), value)
        got = standardize(row)
        assert torch.equal(got, torch.zeros_like(row)), value
        assert np.array_equal(standard(row.numpy()), got.numpy())
    model = torch.tensor([[3.0, 1.0, 2.0]])
    blended = blend(model, [torch.full((1, 3), 1e30)], [1.0])
    assert blended.argsort().tolist() == model.argsort().tolist()
    assert torch.allclose(blended, standardize(model))
    # a row that varies keeps its exact standardization
    varied = torch.tensor([[1.0, 2.0, 4.0]])
    expected = (varied - varied.mean()) / varied.std(correction=0)
    assert torch.equal(standardize(varied), expected)


def test_sharp_kernel_of_a_repeated_user_is_that_users_row() -> None:
    """Every copy of a repeated user gets the user's scores (the first copy of user 0 got
    the constant row of a user without products)."""
    vecs = torch.randn(9, 5, generator=torch.Generator().manual_seed(0))
    pairs = torch.tensor([[0, 0, 1, 2, 2], [1, 2, 3, 4, 5]])
    each = sharp_kernel(torch.arange(3), pairs, 3, vecs)
    got = sharp_kernel(torch.tensor([0, 0, 2, 0]), pairs, 3, vecs)
    assert torch.allclose(got, each[[0, 0, 2, 0]])
    scores = kernel_scores(["sharp", "content"], torch.tensor([2, 2]), pairs, 3, vecs)
    assert torch.allclose(scores["sharp"], each[[2, 2]])


def test_vectors_of_any_scale_keep_their_direction() -> None:
    """A text vector of huge (1e30) or tiny (1e-30) values is the same direction as the
    vector at unit scale: its square overflowed (or underflowed) float32, and the row was
    silently zeroed. An infinite entry counts as unknown (0), as a NaN does."""
    data, _ = _clusters()
    base = item_modalities(data)["text_vec"]
    text = data["Product"].text_vec
    for scale in (1e30, 1e-30, 1e20, 1e-20):
        data["Product"].text_vec = text * scale
        assert torch.allclose(item_modalities(data)["text_vec"], base, atol=1e-6), scale
    odd = text.clone()
    odd[0, 0], odd[1, 1] = math.inf, math.nan
    data["Product"].text_vec = odd
    got = item_modalities(data)["text_vec"]
    clean = text.clone()
    clean[0, 0] = clean[1, 1] = 0.0
    assert bool(torch.isfinite(got).all())
    assert torch.allclose(got[:2], torch.nn.functional.normalize(clean[:2], dim=1))


def test_blend_refuses_weights_that_are_not_finite() -> None:
    model = torch.tensor([[1.0, 2.0, 3.0]])
    kernel = torch.tensor([[3.0, 1.0, 2.0]])
    for bad in (math.nan, math.inf):
        with pytest.raises(ValidationError, match="finite"):
            blend(model, [kernel], [bad])  # every score was NaN


def test_neighbourhood_refuses_pairs_users_and_item_vectors_that_do_not_fit() -> None:
    """Pairs out of range were an IndexError at the first kernels (not when built); a user
    row of -1 scored the last user; learned item vectors for 3 of 6 items gave 3 columns."""
    mods = {"text_vec": torch.nn.functional.normalize(torch.randn(6, 4), dim=1)}
    for bad in (torch.tensor([[0], [9]]), torch.tensor([[5], [0]]), torch.tensor([[-1], [0]])):
        with pytest.raises(ValidationError, match="outside"):
            ContentNeighbourhood(mods, bad, 2, 3)
    with pytest.raises(ValidationError, match="integer"):
        ContentNeighbourhood(mods, torch.tensor([[0.0], [1.0]]), 2, 3)
    hood = ContentNeighbourhood(mods, torch.tensor([[0, 1], [1, 2]]), 2, 3)
    assert hood.kernels(torch.tensor([1, 0]), torch.randn(6, 5))["learned"].shape == (2, 6)
    for users in (torch.tensor([-1]), torch.tensor([2])):
        with pytest.raises(ValidationError, match="users"):
            hood.kernels(users, names=["content"])
    for items in (torch.randn(3, 5), torch.randn(6)):
        with pytest.raises(ValidationError, match="learned"):
            hood.kernels(torch.arange(2), items, ["learned"])
