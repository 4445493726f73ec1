"""Training on unusual stores and settings: what is refused and how, what is written, and
what the result and the curve say."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import linked_shop

from graphfusion.errors import ValidationError
from graphfusion.features.embed import read_vectors
from graphfusion.recommend import Recommender
from graphfusion.store import EmbeddedStore
from graphfusion.train import TrainConfig, TrainResult, served_model, train


def _vectors(store: EmbeddedStore) -> list[np.ndarray]:
    """The stored ``fused_vec`` and ``rec_vec`` of the users and of the products."""
    users, products = [f"u{i:02d}" for i in range(12)], [f"p{i:02d}" for i in range(12)]
    return [read_vectors(store, label, prop, keys)
            for label, keys in (("User", users), ("Product", products))
            for prop in ("fused_vec", "rec_vec")]  # fmt: skip


@pytest.mark.parametrize("model", ["mf", "fusion"])
def test_a_model_not_written_back_leaves_the_served_model_and_its_files(
    tmp_path: Path, model: str
) -> None:
    """train(..., write_back=False) replaced the served model's checkpoint, curve and history
    while the store kept the served model's vectors: an MF store then refused to serve
    ("its dim differs from the schema's"), and a fusion store served weights whose
    ``fused_vec`` and ``rec_vec`` were never written."""
    folder = tmp_path / "store"
    settings = {"model": model, "epochs": 2, "taste_epochs": 0}
    with linked_shop(folder) as store:
        served = train(store, TrainConfig(**settings))
        assert served.checkpoint == folder / "models" / f"{model}.pt"
        files = {p.name: p.read_bytes() for p in (folder / "models").iterdir()}
        vectors = _vectors(store)
        other = train(store, TrainConfig(**settings, seed=7), write_back=False)
        assert other.checkpoint == folder / "models" / f"{model}-unwritten.pt"
        assert other.checkpoint.exists() and other.curve is not None and other.curve.exists()
        assert (folder / "models" / f"{model}-unwritten-history.json").exists()
        for name, content in files.items():  # the served model's files, as they were
            assert (folder / "models" / name).read_bytes() == content, name
        for now, before in zip(_vectors(store), vectors, strict=True):
            np.testing.assert_array_equal(now, before)
        assert served_model(folder / "models") == model
        recommender = Recommender(store)
        assert recommender.model_name == model and recommender.checkpoint == served.checkpoint


def test_too_few_interactions_names_the_types_and_the_nodes(tmp_path: Path) -> None:
    """Links only of a type training does not read: the message said "(0)" and nothing of
    why; it names the types read and how many users and products there are."""
    with linked_shop(tmp_path / "viewed", rtype="VIEWED") as store:
        config = TrainConfig(model="mf", epochs=1, interactions=("PURCHASED", "FAVORITED"))
        with pytest.raises(
            ValidationError,
            match=r"too few interactions to train on: 0 user-product pairs linked by "
            r"PURCHASED or FAVORITED among 12 users and 12 products \(at least 10 are needed\)",
        ):
            train(store, config)
    with EmbeddedStore(tmp_path / "users") as store:
        store.upsert_nodes("User", pd.DataFrame({"id": ["u1", "u2"]}))
        with pytest.raises(ValidationError, match=r"0 user-product pairs .* 2 users and 0 prod"):
            train(store, TrainConfig(model="popularity"))


def test_the_summary_of_a_baseline_with_no_epochs_says_none(tmp_path: Path) -> None:
    """Popularity has no epochs: its summary said "best epoch 0 of 0, 0.00 s/epoch"."""
    with linked_shop(tmp_path / "store") as store:
        result = train(store, TrainConfig(model="popularity"))
    assert result.summary().startswith("popularity: test recall@10 ")
    assert "epoch" not in result.summary()


def test_the_summary_counts_one_taste_epoch_in_the_singular() -> None:
    result = TrainResult(
        TrainConfig(model="fusion"),
        history=[{"epoch": 1, "loss": 0.5, "valid_recall@20": 0.25}],
        best_epoch=1,
        taste_history=[{"epoch": 1, "loss": 0.1, "valid": 0.5}],
    )
    assert "best epoch 1 of 1," in result.summary()
    assert "best validation Recall@20 0.5000 of 1 epoch," in result.summary()


def test_the_curve_of_a_single_epoch_shows_each_value_at_a_whole_epoch() -> None:
    """With one epoch the loss, drawn as a line without markers, did not show at all, and
    the epoch axis read 0.96 to 1.04."""
    from graphfusion.train import _curve

    history = [{"epoch": 1, "loss": 0.69, "valid_recall@20": 0.4,
                "valid_content_recall@20": 0.3}]  # fmt: skip
    fig = _curve(history, "fusion")
    loss_axes, recall_axes = fig.axes
    lines = [*loss_axes.get_lines(), *recall_axes.get_lines()]
    assert len(lines) == 3
    assert all(line.get_marker() not in (None, "", "None", " ") for line in lines)
    fig.canvas.draw()
    ticks = [t for t in loss_axes.get_xticks() if loss_axes.get_xlim()[0] <= t
             <= loss_axes.get_xlim()[1]]  # fmt: skip
    assert ticks == [1.0]


def test_a_tiny_cold_test_is_called_trivial(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Cold products are ranked among the tested ones only: with 20 or fewer, each user's
    Recall@20 is 1 whatever the model does, and the result did not say so."""
    with linked_shop(tmp_path / "store", per_user=6) as store, caplog.at_level(logging.WARNING):
        result = train(store, TrainConfig(model="mf", epochs=1, cold_items=0.2))
    assert result.cold["recall@20"] == 1.0
    said = [r.getMessage() for r in caplog.records if r.name == "graphfusion.train"]
    assert any("2 cold products are tested" in m and "Recall@10 and Recall@20 are 1" in m
               for m in said), said  # fmt: skip
