"""Repeatable training: deterministic algorithms inside the training entry points, and the
caller's setting restored."""

from __future__ import annotations

import threading

import pytest
import torch

from graphfusion.models.taste import TasteConfig, fit_taste, item_features
from graphfusion.repeatable import repeatable


@pytest.fixture
def two_threads():
    """Several threads: where the order of a gradient's sum can change between runs."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@repeatable
def _gather_gradient(x: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return torch.autograd.grad((x[index] * weights).sum(), x)[0]


def test_a_long_gathers_gradient_repeats_bit_for_bit(two_threads) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5000, 64, generator=g, requires_grad=True)
    index = torch.randint(0, 5000, (200_000,), generator=g)
    weights = torch.randn(200_000, 64, generator=g)
    first = _gather_gradient(x, index, weights)
    assert all(torch.equal(first, _gather_gradient(x, index, weights)) for _ in range(6))


@pytest.mark.parametrize("enabled", [False, True])
def test_the_callers_setting_is_restored_after_a_return_or_a_raise(enabled: bool) -> None:
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(enabled)
    seen: list[bool] = []

    @repeatable
    def inside(fail: bool) -> None:
        seen.append(torch.are_deterministic_algorithms_enabled())
        if fail:
            raise RuntimeError("boom")

    try:
        inside(False)
        assert torch.are_deterministic_algorithms_enabled() is enabled
        with pytest.raises(RuntimeError, match="boom"):
            inside(True)
        assert torch.are_deterministic_algorithms_enabled() is enabled
        assert torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    finally:
        torch.use_deterministic_algorithms(before)
    assert seen == [True, True]


def test_taste_training_on_many_pairs_repeats_bit_for_bit(two_threads) -> None:
    """47,533 distinct pairs: enough for the input vectors' gradient to be summed on both
    threads."""
    g = torch.Generator().manual_seed(1)
    features = item_features({"text_vec": torch.randn(600, 24, generator=g)})
    users = torch.arange(3000).repeat_interleave(20)
    items = (users * 7 + torch.randint(0, 40, (60_000,), generator=g)) % 600
    pairs = torch.unique(torch.stack([users, items]), dim=1)
    how = torch.ones(pairs.shape[1], 1)
    config = TasteConfig(dim=32, hidden=64, epochs=2, batch_size=1500, patience=5)
    runs = [fit_taste(features, pairs, how, 3000, config=config)[0] for _ in range(2)]
    first, second = (run.state_dict() for run in runs)
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_overlapping_calls_on_two_threads_keep_it_on_until_the_last_leaves() -> None:
    """A starts, B starts, A finishes while B runs, B finishes: B runs deterministically to
    its end, and the caller's setting (off) is back afterwards."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    @repeatable
    def first() -> None:
        a_in.set()
        assert b_in.wait(10)

    @repeatable
    def second() -> None:
        b_in.set()
        assert a_out.wait(10)
        seen["b after a left"] = torch.are_deterministic_algorithms_enabled()

    def run_first() -> None:
        first()
        seen["after a left"] = torch.are_deterministic_algorithms_enabled()
        a_out.set()

    try:
        threads = [threading.Thread(target=run_first), threading.Thread(target=second)]
        threads[0].start()
        assert a_in.wait(10)
        threads[1].start()
        for t in threads:
            t.join(10)
        assert seen == {"after a left": True, "b after a left": True}
        assert torch.are_deterministic_algorithms_enabled() is False
    finally:
        torch.use_deterministic_algorithms(before)
