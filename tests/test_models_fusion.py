"""The fusion GNN on a small random heterogeneous graph: shapes, determinism, gradients."""

from __future__ import annotations

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
    u, i = a.embeddings()
    assert u.shape == (6, 8) and i.shape == (9, 8)
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
    assert model.proj["Product"].weight.grad is not None  # type: ignore[union-attr]
    assert model.proj["Product"].weight.grad.abs().sum() > 0  # type: ignore[union-attr]


def test_needs_users_and_products() -> None:
    data = HeteroData()
    data["Brand"].num_nodes = 2
    with pytest.raises(ValidationError, match="needs User and Product"):
        FusionGNN(data)
