"""The content taste model: features, user vectors, masked-softmax training, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from graphfusion.errors import ValidationError
from graphfusion.evaluate import full_ranking_metrics
from graphfusion.models.taste import TasteConfig, TasteModel, fit_taste, item_features

SMALL = TasteConfig(dim=16, hidden=32, epochs=40, lr=1e-2, batch_size=16, ema=0.9, patience=40)


def _planted(n_users: int = 64, n_items: int = 80, per_user: int = 8, seed: int = 0) -> dict:
    """Items in 4 clusters that their text shows; user u likes cluster u % 4 and picks
    products from it (popular ones more often), and 1 in 8 of their picks from anywhere.
    Each user's last two picks are held out."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    cluster = torch.arange(n_items) % 4
    centres = 3 * torch.randn(4, 12, generator=g)
    text = centres[cluster] + torch.randn(n_items, 12, generator=g)
    pop = np.exp(-0.05 * rng.permutation(n_items))
    train, held = [], []
    for u in range(n_users):
        liked = np.flatnonzero(cluster.numpy() == u % 4)
        p = pop[liked] / pop[liked].sum()
        picks = list(rng.choice(liked, per_user, replace=False, p=p))
        picks[-3] = int(rng.integers(n_items))
        picks = list(dict.fromkeys(int(i) for i in picks))
        train += [(u, i) for i in picks[:-2]]
        held += [(u, i) for i in picks[-2:]]
    pairs = torch.tensor(train).t()
    return {
        "features": item_features({"text_vec": text}),
        "pairs": pairs,
        "how": torch.ones(pairs.shape[1], 1),
        "held": held,
        "cluster": cluster,
        "n_users": n_users,
    }


def _recall(scores: torch.Tensor, data: dict) -> float:
    seen: list[list[int]] = [[] for _ in range(data["n_users"])]
    truth: list[list[int]] = [[] for _ in range(data["n_users"])]
    for u, i in data["pairs"].t().tolist():
        seen[u].append(i)
    for u, i in data["held"]:
        truth[u].append(i)
    return float(full_ranking_metrics(scores.numpy(), seen, truth, ks=(10,))["recall@10"])


def test_item_features_join_modalities_in_name_order_and_centre_prices() -> None:
    text, image = torch.ones(3, 2), 2 * torch.ones(3, 4)
    price = torch.tensor([1.0, 3.0, math.nan])
    got = item_features({"text_vec": text, "image_vec": image}, price)
    assert got.shape == (3, 7)
    assert torch.equal(got[:, :4], image) and torch.equal(got[:, 4:6], text)
    assert torch.allclose(got[:, 6], torch.tensor([-1.0, 1.0, 0.0]))  # unknown price: 0
    with pytest.raises(ValidationError, match="no modality"):
        item_features({})
    with pytest.raises(ValidationError, match="log_price"):
        item_features({"text_vec": text}, torch.zeros(2))
    with pytest.raises(ValidationError, match="one row per item"):
        item_features({"text_vec": text, "image_vec": torch.ones(2, 4)})


def test_a_users_vector_depends_only_on_their_own_products_and_followees() -> None:
    data = _planted()
    torch.manual_seed(0)
    warm = torch.ones(80, dtype=torch.bool)
    model = TasteModel(data["features"], 1, warm, dim=8, hidden=16)
    pairs, how = data["pairs"], data["how"]
    follows = torch.tensor([[3, 3, 5], [1, 2, 7]])
    with torch.no_grad():
        everyone = model.user_vectors(pairs, how, data["n_users"], follows)
        # user 3 alone, as a recommender serving one user builds it: their pairs as row 0,
        # their followees' pairs as rows 0 and 1
        mine = pairs[:, pairs[0] == 3]
        fol = [pairs[:, pairs[0] == f] for f in (1, 2)]
        followee_pairs = torch.cat(
            [torch.stack([torch.full_like(p[0], k), p[1]]) for k, p in enumerate(fol)], 1
        )
        alone = model.user_vectors(
            torch.stack([torch.zeros_like(mine[0]), mine[1]]),
            torch.ones(mine.shape[1], 1),
            1,
            torch.tensor([[0, 0], [0, 1]]),
            (followee_pairs, torch.ones(followee_pairs.shape[1], 1)),
        )
        # the followees' pairs among everyone's (rows 1 and 2 of ``pairs``) read the same
        among_all = model.user_vectors(
            torch.stack([torch.zeros_like(mine[0]), mine[1]]),
            torch.ones(mine.shape[1], 1),
            1,
            torch.tensor([[0, 0], [1, 2]]),
            (pairs, how),
        )
        no_follows = model.user_vectors(pairs, how, data["n_users"])
        # every product's input vectors given: the same as those of the products named alone
        given_all = model.user_vectors(
            torch.stack([torch.zeros_like(mine[0]), mine[1]]),
            torch.ones(mine.shape[1], 1),
            1,
            torch.tensor([[0, 0], [1, 2]]),
            (pairs, how),
            inputs=model.input_vectors(),
        )
    assert torch.allclose(everyone[3], alone[0], atol=1e-5)
    torch.testing.assert_close(among_all, alone)
    torch.testing.assert_close(given_all, alone)
    assert not torch.allclose(everyone[3], no_follows[3])  # the followees count
    assert torch.allclose(everyone[4], no_follows[4])  # user 4 follows no one


def test_vectors_of_some_users_are_those_rows_of_everyones() -> None:
    """vectors_of computes only the users asked (repeats and a user without pairs included),
    with their follows, and gives the same vectors as computing every user's."""
    data = _planted()
    torch.manual_seed(0)
    model = TasteModel(data["features"], 1, torch.ones(80, dtype=torch.bool), dim=8, hidden=16)
    keep = data["pairs"][0] != 9  # user 9 has no pairs
    pairs, how = data["pairs"][:, keep], data["how"][keep]
    follows = torch.tensor([[3, 3, 5, 9], [1, 2, 7, 3]])
    users = torch.tensor([5, 3, 9, 3, 0])
    with torch.no_grad():
        everyone = model.user_vectors(pairs, how, data["n_users"], follows)
        some = model.vectors_of(users, pairs, how, data["n_users"], follows)
        alone = model.vectors_of(users, pairs, how, data["n_users"])
    assert some.shape == (5, 8)
    torch.testing.assert_close(some, everyone[users])
    assert not torch.allclose(alone[1], some[1])  # user 3's followees count
    with pytest.raises(ValidationError, match="rows below 64"):
        model.vectors_of(torch.tensor([64]), pairs, how, data["n_users"])


def test_training_lowers_the_loss_and_beats_popularity() -> None:
    data = _planted()
    pairs = data["pairs"]
    valid = []
    model, history = fit_taste(
        data["features"], pairs, data["how"], data["n_users"],
        validate=lambda s: valid.append(_recall(s, data)) or valid[-1], config=SMALL,
    )  # fmt: skip
    assert history[-1]["loss"] < 0.9 * history[0]["loss"]
    assert [h["valid"] for h in history] == valid
    with torch.no_grad():
        scores = model.scores(model.user_vectors(pairs, data["how"], data["n_users"]))
    counts = torch.bincount(pairs[1], minlength=80).float()
    popularity = _recall(counts.repeat(data["n_users"], 1), data)
    taste = _recall(scores, data)
    assert taste == pytest.approx(max(valid))  # the best epoch is kept
    assert taste > popularity + 0.2, (taste, popularity)
    # its popularity term learned which products are picked more often
    assert np.corrcoef(model.bias.detach().numpy(), counts.numpy())[0, 1] > 0.3


def test_validation_can_score_some_users_only() -> None:
    data = _planted()
    args = (data["features"], data["pairs"], data["how"], data["n_users"])
    cfg = TasteConfig(dim=8, hidden=16, epochs=3, batch_size=16)
    rows = torch.tensor([1, 4, 5])
    shapes: list[tuple[int, ...]] = []
    some, _ = fit_taste(*args, validate=lambda s: shapes.append(tuple(s.shape)) or 0.0,
                        validate_users=rows, config=cfg)  # fmt: skip
    assert shapes == [(3, 80)] * 3
    every, _ = fit_taste(*args, validate=lambda s: 0.0, config=cfg)
    assert all(
        torch.equal(x, y) for x, y in zip(some.parameters(), every.parameters(), strict=True)
    )


def test_new_products_are_ranked_by_content_and_cold_ones_get_no_popularity() -> None:
    data = _planted()
    warm = torch.zeros(80, dtype=torch.bool)
    warm[data["pairs"][1]] = True
    model, _ = fit_taste(data["features"], data["pairs"], data["how"], data["n_users"],
                         config=SMALL)  # fmt: skip
    assert torch.equal(model.warm, warm)
    with torch.no_grad():
        h = model.user_vectors(data["pairs"], data["how"], data["n_users"])
        content = model.scores(h, content_only=True)
        full = model.scores(h)
        # one new product per cluster, from its features: each user prefers their cluster's
        firsts = torch.stack([torch.nonzero(data["cluster"] == c)[0, 0] for c in range(4)])
        new = model.item_vectors(data["features"][firsts] + 0.1)
        preferred = (h @ new.t()).argmax(1)
    assert torch.allclose(full - content, (model.bias * warm).expand_as(full), atol=1e-5)
    assert float((preferred == torch.arange(data["n_users"]) % 4).float().mean()) > 0.8


def test_the_same_seed_trains_the_same_model() -> None:
    data = _planted()
    args = (data["features"], data["pairs"], data["how"], data["n_users"])
    cfg = TasteConfig(dim=8, hidden=16, epochs=3, batch_size=16)
    a, _ = fit_taste(*args, config=cfg)
    b, _ = fit_taste(*args, config=cfg)
    c, _ = fit_taste(*args, config=TasteConfig(dim=8, hidden=16, epochs=3, batch_size=16, seed=1))
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.bias, c.bias)


def test_bad_inputs_are_refused() -> None:
    data = _planted()
    f, pairs, how, n = data["features"], data["pairs"], data["how"], data["n_users"]
    with pytest.raises(ValidationError, match="how must be"):
        fit_taste(f, pairs, how[:-1], n)
    with pytest.raises(ValidationError, match="finite"):
        fit_taste(f, pairs, torch.full_like(how, math.nan), n)
    with pytest.raises(ValidationError, match="out of range"):
        fit_taste(f, pairs, how, 3)
    with pytest.raises(ValidationError, match="each pair once"):
        fit_taste(f, torch.cat([pairs, pairs[:, :1]], 1), torch.ones(pairs.shape[1] + 1, 1), n)
    with pytest.raises(ValidationError, match="follows must be user rows"):
        fit_taste(f, pairs, how, n, follows=torch.tensor([[0], [n]]))
    with pytest.raises(ValidationError, match="non-empty"):
        fit_taste(f, torch.zeros(2, 0, dtype=torch.long), how[:0], n)
    with pytest.raises(ValidationError, match="finite"):
        TasteModel(torch.full((4, 2), math.nan), 1, torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValidationError, match="warm"):
        TasteModel(f, 1, torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValidationError, match="mask"):
        fit_taste(f, pairs, how, n, config=TasteConfig(mask=1.0))
    with pytest.raises(ValidationError, match="must be >= 1"):
        TasteConfig(epochs=0).check()


def test_taste_inputs_cut_wide_modalities_and_keep_their_fit() -> None:
    """Modalities wider than ``max_width`` are projected on their principal directions (their
    values kept on the scale of the vectors), the price centre is the training catalogue's,
    and a missing modality or price counts as zeros."""
    from graphfusion.models.taste import TasteInputs

    g = torch.Generator().manual_seed(0)
    wide = torch.nn.functional.normalize(torch.randn(40, 30, generator=g), dim=1)
    narrow = torch.randn(40, 4, generator=g)
    price = torch.linspace(0.0, 3.0, 40)
    inputs = TasteInputs({"image_vec": 30, "text_vec": 4}, prices=True, rank=6, max_width=10)
    assert inputs.projected == ["image_vec"] and inputs.width == 6 + 4 + 1
    inputs.fit({"image_vec": wide, "text_vec": narrow}, price)
    got = inputs({"image_vec": wide, "text_vec": narrow}, price)
    assert got.shape == (40, 11)
    assert torch.equal(got[:, 6:10], narrow)
    assert float(inputs.centre) == pytest.approx(1.5)
    torch.testing.assert_close(got[:, 10], price - 1.5)
    assert 0.3 < float(got[:, :6].std() / wide.std()) < 3.0  # about the scale of the vectors
    # the projection keeps what tells the rows apart: nearest neighbours mostly agree
    near = (wide @ wide.t()).fill_diagonal_(-2).argmax(1)
    cut = torch.nn.functional.normalize(got[:, :6], dim=1)
    assert float((near == (cut @ cut.t()).fill_diagonal_(-2).argmax(1)).float().mean()) > 0.3
    one = inputs({"text_vec": narrow[:1]}, None)  # no photo, no price
    assert one.shape == (1, 11) and float(one[0, 10]) == 0.0
    with pytest.raises(ValidationError, match="text_vec"):
        inputs({"text_vec": torch.ones(2, 5)}, None)


def test_rows_out_of_range_or_of_a_wrong_type_are_refused() -> None:
    """Negative or float rows, and validation users that are not users, get a clear error
    (a negative user row was a RuntimeError from bincount, a negative item an IndexError)."""
    data = _planted()
    f, pairs, how, n = data["features"], data["pairs"], data["how"], data["n_users"]
    cfg = TasteConfig(dim=8, hidden=16, epochs=1, batch_size=16)
    for bad in (torch.tensor([[0, -1], [0, 1]]), torch.tensor([[0, 1], [0, -1]])):
        with pytest.raises(ValidationError, match="out of range"):
            fit_taste(f, bad, how[:2], n, config=cfg)
    with pytest.raises(ValidationError, match="integer"):
        fit_taste(f, pairs.float(), how, n, config=cfg)
    with pytest.raises(ValidationError, match="validate_users"):
        fit_taste(f, pairs, how, n, validate=lambda s: 0.0, validate_users=torch.tensor([n]),
                  config=cfg)  # fmt: skip
    with pytest.raises(ValidationError, match="text_vec"):
        item_features({"text_vec": torch.randn(5)})


def test_a_diverging_training_is_refused_not_returned() -> None:
    """Large item features (within :data:`FEATURE_MAX`) and an absurd learning rate make the
    loss infinite; training stops with an error instead of returning a model whose every
    score is NaN. (Features above the bound are refused before training.)"""
    data = _planted()
    cfg = TasteConfig(dim=8, hidden=16, epochs=2, batch_size=16, lr=1e6)
    with pytest.raises(ValidationError, match="not finite"):
        fit_taste(data["features"] * 1e5, data["pairs"], data["how"], data["n_users"], config=cfg)


def test_without_a_user_of_two_products_nothing_is_trained_and_a_warning_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With one product per user no product can be a target: training used to run its epochs
    anyway, each reporting a loss of 0.0 and calling ``validate``, and return the untrained
    model as if it had learned; now it returns at once, with no epochs and a warning."""
    data = _planted()
    first = dict(reversed(data["pairs"].t().tolist()))  # each user's first product
    once = torch.tensor(sorted(first.items())).t()
    assert torch.equal(torch.bincount(once[0]), torch.ones(data["n_users"], dtype=torch.long))
    calls: list[int] = []
    with caplog.at_level("WARNING", logger="graphfusion.models"):
        model, history = fit_taste(
            data["features"], once, torch.ones(once.shape[1], 1), data["n_users"],
            validate=lambda s: calls.append(1) or 0.0, config=SMALL,
        )  # fmt: skip
    assert history == [] and calls == []
    assert "two or more products" in caplog.text
    assert not model.training
    with torch.no_grad():
        scores = model.scores(model.user_vectors(once, torch.ones(once.shape[1], 1),
                                                 data["n_users"]))  # fmt: skip
    assert bool(torch.isfinite(scores).all())


def test_infinite_modality_entries_count_as_zero_as_in_the_fusion_model() -> None:
    """An infinite entry became 3.4e38 (``nan_to_num``'s default), a "finite" feature that
    the model trained on with a loss of about 1e36 instead of refusing or ignoring it."""
    text = torch.ones(3, 2)
    text[1, 0], text[2, 1] = math.inf, -math.inf
    got = item_features({"text_vec": text})
    assert torch.equal(got, torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]]))


@pytest.mark.parametrize("scale", [1e7, 1e18])
def test_features_of_an_absurd_scale_are_refused_before_training(scale: float) -> None:
    """The fusion model refuses input features above 1e6 (they are not standardized); the
    taste model trained on them, with a loss of 1e11 to 1e35, and returned the model."""
    data = _planted()
    calls: list[int] = []
    with pytest.raises(ValidationError, match="scale"):
        fit_taste(data["features"] * scale, data["pairs"], data["how"], data["n_users"],
                  validate=lambda s: calls.append(1) or 0.0,
                  config=TasteConfig(dim=8, hidden=16, epochs=2, batch_size=16))  # fmt: skip
    assert calls == []
    model, _ = fit_taste(data["features"], data["pairs"], data["how"], data["n_users"],
                         config=TasteConfig(dim=8, hidden=16, epochs=1, batch_size=16))  # fmt: skip
    with pytest.raises(ValidationError, match="scale"):
        model.item_vectors(data["features"][:2] * scale)
    with pytest.raises(ValidationError, match="finite"):
        model.input_vectors(torch.full((2, data["features"].shape[1]), math.nan))
