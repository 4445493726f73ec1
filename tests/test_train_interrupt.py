"""Ctrl-C while training: the first stops training as early stopping does (the best epoch so
far is kept, tested, saved and written back); one before the first validation, or a second,
aborts and leaves the served model, its files and the stored vectors as they were.

The Ctrl-C is a real SIGINT (``signal.raise_signal``) sent from inside a training step or a
validation, so that it lands where a user's would.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import graphfusion.train as train_module
from graphfusion import Engine
from graphfusion.features.embed import read_vectors, write_vectors
from graphfusion.ingest import load
from graphfusion.models import MF, LightGCN
from graphfusion.models.fusion import FusionGNN
from graphfusion.models.neighbourhood import KERNELS
from graphfusion.models.taste import TasteModel
from graphfusion.recommend import Recommender
from graphfusion.train import SERVED_FILE, TrainResult, served_model

SETTINGS: dict[str, Any] = {"epochs": 10, "patience": 10, "batch_size": 256, "lr": 0.05}


@pytest.fixture(autouse=True)
def _python_handles_ctrl_c() -> Iterator[None]:
    """Each test starts and must end with Python's own SIGINT handler."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    yield
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.fixture
def engine(tiny_shop: Path, tmp_path: Path) -> Iterator[Engine]:
    with Engine(tmp_path / "store") as engine:
        load(engine.store, "synthetic", {"shop": tiny_shop})
        yield engine


def ctrl_c() -> None:
    """Press Ctrl-C: a real SIGINT to this process, handled before the next bytecode."""
    signal.raise_signal(signal.SIGINT)


def ctrl_c_in_step(
    monkeypatch: pytest.MonkeyPatch, model: type, *, after_validations: int, times: int = 1
) -> list[int]:
    """Press Ctrl-C in the first training step after ``after_validations`` validations (and in
    each of the next ``times - 1`` steps); returns the validation count, growing."""
    validations = [0]
    sent = [0]
    evaluate, loss = train_module._evaluate, model.loss

    def counted(*args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("content"):
            validations[0] += 1
        return evaluate(*args, **kwargs)

    def pressed(self: Any, *args: Any, **kwargs: Any) -> Any:
        if validations[0] >= after_validations and sent[0] < times:
            sent[0] += 1
            ctrl_c()
        return loss(self, *args, **kwargs)

    monkeypatch.setattr(train_module, "_evaluate", counted)
    monkeypatch.setattr(model, "loss", pressed)
    return validations


def served_files(engine: Engine) -> dict[str, bytes]:
    folder = engine.store.path / "models"  # type: ignore[attr-defined]
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def stored(engine: Engine, prop: str = "fused_vec") -> tuple[np.ndarray, np.ndarray]:
    users = sorted(engine.cypher("MATCH (u:User) RETURN u.id AS id")["id"])
    items = sorted(engine.cypher("MATCH (p:Product) RETURN p.id AS id")["id"])
    return (read_vectors(engine.store, "User", prop, users),
            read_vectors(engine.store, "Product", prop, items))  # fmt: skip


def checkpoint_vectors(result: TrainResult) -> tuple[np.ndarray, np.ndarray]:
    """The MF embeddings of a checkpoint (what the store must hold when it is served)."""
    assert result.checkpoint is not None
    state = torch.load(result.checkpoint, weights_only=True)["state_dict"]
    return state["user.weight"].numpy(), state["item.weight"].numpy()


@pytest.mark.parametrize("model", ["mf", "lightgcn"])
def test_a_ctrl_c_at_epoch_3_keeps_the_best_epoch_so_far_and_serves_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    cls = {"mf": MF, "lightgcn": LightGCN}[model]
    ctrl_c_in_step(monkeypatch, cls, after_validations=2)
    result = engine.train(model, seed=4, **SETTINGS)
    monkeypatch.undo()
    # epoch 3 is abandoned in its first step: two epochs, the better one kept and tested
    assert result.interrupted == {"epoch": 3}
    assert [h["epoch"] for h in result.history] == [1, 2]
    valid = [h["valid_recall@20"] for h in result.history]
    assert result.best_epoch == 1 + int(np.argmax(valid))
    assert set(result.test) == {"recall@10", "ndcg@10", "recall@20", "ndcg@20"}
    said = f"training interrupted by Ctrl-C at epoch 3, epoch {result.best_epoch} kept"
    assert said in result.summary()
    assert result.checkpoint is not None and result.curve is not None
    history = json.loads(result.checkpoint.with_name(f"{model}-history.json").read_text())
    assert history["interrupted"] == {"epoch": 3} and len(history["history"]) == 2
    assert served_model(result.checkpoint.parent) == model
    assert not list(result.checkpoint.parent.glob("*.part*"))
    # the same as training just those epochs: the kept weights are served and stored
    whole = engine.train(model, seed=4, **{**SETTINGS, "epochs": 2})
    assert whole.interrupted == {} and whole.best_epoch == result.best_epoch
    assert whole.test == pytest.approx(result.test, abs=1e-9)
    if model == "mf":
        users, items = stored(engine)
        np.testing.assert_allclose(users, checkpoint_vectors(whole)[0], atol=1e-6)
        np.testing.assert_allclose(items, checkpoint_vectors(whole)[1], atol=1e-6)


def test_a_ctrl_c_during_a_validation_keeps_that_epoch(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The epoch whose validation the Ctrl-C falls in is completed, recorded and may be kept."""
    evaluate, calls = train_module._evaluate, [0]

    def pressed(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 3:
            ctrl_c()
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(train_module, "_evaluate", pressed)
    result = engine.train("mf", seed=4, **SETTINGS)
    assert result.interrupted == {"epoch": 3} and len(result.history) == 3
    valid = [h["valid_recall@20"] for h in result.history]
    assert result.best_epoch == 1 + int(np.argmax(valid))


def test_a_ctrl_c_before_the_first_validation_aborts_and_changes_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.train("mf", seed=1, **{**SETTINGS, "epochs": 2})
    files, vectors = served_files(engine), stored(engine)
    ctrl_c_in_step(monkeypatch, MF, after_validations=0)
    with pytest.raises(KeyboardInterrupt):
        engine.train("mf", seed=2, **SETTINGS)
    assert served_files(engine) == files
    for before, after in zip(vectors, stored(engine), strict=True):
        np.testing.assert_array_equal(before, after)


def test_a_second_ctrl_c_aborts_and_leaves_the_served_model_and_its_files(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second Ctrl-C, after training stopped, while the rec_vec factors are computed (the
    slow part of the write-back): nothing is written, no history or curve of the aborted run
    replaces the served model's, no part file is left."""
    engine.train("mf", seed=1, **{**SETTINGS, "epochs": 2})
    files, vectors, rec = served_files(engine), stored(engine), stored(engine, "rec_vec")
    ctrl_c_in_step(monkeypatch, MF, after_validations=2)
    factors = train_module.score_factors

    def second(*args: Any, **kwargs: Any) -> Any:
        ctrl_c()
        return factors(*args, **kwargs)

    monkeypatch.setattr(train_module, "score_factors", second)
    with pytest.raises(KeyboardInterrupt):
        engine.train("mf", seed=2, **SETTINGS)
    assert served_files(engine) == files
    for before, after in zip((*vectors, *rec), (*stored(engine), *stored(engine, "rec_vec")),
                             strict=True):  # fmt: skip
        np.testing.assert_array_equal(before, after)


def test_a_ctrl_c_while_the_vectors_are_written_lets_them_all_be_written_first(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Users' vectors written and products' not: MF (which serves the stored vectors) served
    new users against old products. The write-back ends, then the Ctrl-C aborts."""
    engine.train("mf", seed=1, **{**SETTINGS, "epochs": 2})
    before = stored(engine)
    writes = [0]

    def pressed(*args: Any, **kwargs: Any) -> Any:
        writes[0] += 1
        if writes[0] == 2:  # after the users' fused_vec, before the products'
            ctrl_c()
        return write_vectors(*args, **kwargs)

    monkeypatch.setattr(train_module, "write_vectors", pressed)
    with pytest.raises(KeyboardInterrupt):
        engine.train("mf", seed=2, **{**SETTINGS, "epochs": 2})
    assert writes[0] == 4  # fused_vec and rec_vec of users and products
    folder = engine.store.path / "models"  # type: ignore[attr-defined]
    state = torch.load(folder / "mf.pt", weights_only=True)["state_dict"]
    users, items = stored(engine)
    np.testing.assert_allclose(users, state["user.weight"].numpy(), atol=1e-6)
    np.testing.assert_allclose(items, state["item.weight"].numpy(), atol=1e-6)
    assert not np.allclose(items, before[1])
    assert json.loads((folder / SERVED_FILE).read_text())["model"] == "mf"
    assert not list(folder.glob("*.part*"))


def test_training_leaves_a_handler_of_the_callers_and_runs_in_a_thread(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a SIGINT handler of the caller's, training takes no Ctrl-C (it goes to that
    handler); in a thread, where no handler can be installed, it trains as it did."""
    pressed: list[int] = []
    ctrl_c_in_step(monkeypatch, MF, after_validations=2)
    signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        result = engine.train("mf", seed=4, **SETTINGS)
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert pressed == [signal.SIGINT]
    assert result.interrupted == {} and len(result.history) == 10
    monkeypatch.undo()
    out: list[TrainResult | BaseException] = []

    def run() -> None:
        try:
            out.append(engine.train("mf", seed=4, **{**SETTINGS, "epochs": 3}))
        except BaseException as error:  # reported below
            out.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert isinstance(out[0], TrainResult), out
    assert len(out[0].history) == 3 and out[0].interrupted == {}


def _with_text_vectors(engine: Engine) -> None:
    """Random product text vectors: the fusion model then has its neighbourhood and taste
    model, without loading a text encoder."""
    items = sorted(engine.cypher("MATCH (p:Product) RETURN p.id AS id")["id"])
    dim = engine.store.schema.node("Product").prop("text_vec").type.dim
    assert dim is not None
    vecs = np.random.default_rng(0).normal(size=(len(items), dim))
    write_vectors(engine.store, "Product", "text_vec", items, vecs / np.linalg.norm(vecs, axis=1,
                  keepdims=True))  # fmt: skip


def _ctrl_c_in_taste_validation(monkeypatch: pytest.MonkeyPatch, at: int) -> None:
    """Press Ctrl-C during the taste model's ``at``-th validation."""
    fit = train_module.fit_taste

    def pressing(*args: Any, validate: Callable[[torch.Tensor], float], **kw: Any) -> Any:
        calls = [0]

        def counted(scores: torch.Tensor) -> float:
            calls[0] += 1
            if calls[0] == at:
                ctrl_c()
            return validate(scores)

        return fit(*args, validate=counted, **kw)

    monkeypatch.setattr(train_module, "fit_taste", pressing)


def test_the_fusion_model_and_its_taste_model_each_stop_at_a_ctrl_c(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C in the GNN's epochs stops them; the taste model trains next, and a Ctrl-C in
    its epochs stops them too, keeping its best; the blend, test and write-back follow."""
    _with_text_vectors(engine)
    ctrl_c_in_step(monkeypatch, FusionGNN, after_validations=2)
    _ctrl_c_in_taste_validation(monkeypatch, at=3)
    result = engine.train("fusion", seed=0, epochs=8, patience=8, batch_size=512, lr=0.01,
                          taste_epochs=30)  # fmt: skip
    monkeypatch.undo()
    assert result.interrupted == {"epoch": 3, "taste epoch": 3}
    assert len(result.history) == 2 and len(result.taste_history) == 3
    valid = [h["valid"] for h in result.taste_history]
    kept = 1 + int(np.argmax(valid))
    assert f"taste model interrupted by Ctrl-C at epoch 3, epoch {kept} kept" in result.summary()
    assert result.blend and result.test and result.checkpoint is not None
    assert Recommender(engine.store).model_name == "fusion"
    assert len(engine.recommend("u0001", k=3)) == 3


def test_a_taste_model_stopped_before_its_first_epoch_is_left_out_of_the_blend(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_text_vectors(engine)
    ctrl_c_in_step(monkeypatch, TasteModel, after_validations=0)
    result = engine.train("fusion", seed=0, epochs=2, patience=2, batch_size=512, lr=0.01,
                          taste_epochs=30)  # fmt: skip
    monkeypatch.undo()
    assert result.interrupted == {"taste epoch": 1} and result.taste_history == []
    assert "taste model interrupted by Ctrl-C at epoch 1, untrained" in result.summary()
    assert "taste" in KERNELS and result.blend["warm taste"] == result.blend["cold taste"] == 0
    assert len(engine.recommend("u0001", k=3)) == 3


def test_an_abort_while_the_rec_vectors_are_computed_changes_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain abort (a Ctrl-C after training, or an error) while the write-back's factors
    were computed left the fused_vec of the new model stored with the old checkpoint served,
    the history and curve of the aborted run in the models folder, and mf.pt.part."""
    engine.train("mf", seed=1, **{**SETTINGS, "epochs": 2})
    files, vectors = served_files(engine), stored(engine)
    factors = train_module.score_factors

    def pressed(*args: Any, **kwargs: Any) -> Any:
        ctrl_c()
        return factors(*args, **kwargs)

    monkeypatch.setattr(train_module, "score_factors", pressed)
    with pytest.raises(KeyboardInterrupt):
        engine.train("mf", seed=2, **{**SETTINGS, "epochs": 2})
    assert served_files(engine) == files
    for before, after in zip(vectors, stored(engine), strict=True):
        np.testing.assert_array_equal(before, after)
