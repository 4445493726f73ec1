"""Recommendation models: the fusion GNN and the baselines (popularity, MF-BPR, LightGCN)."""

from __future__ import annotations

from graphfusion.models.baselines import (
    MF,
    LightGCN,
    Popularity,
    bpr_loss,
    normalized_adjacency,
)
from graphfusion.models.fusion import FusionGNN
from graphfusion.models.neighbourhood import ContentNeighbourhood

__all__ = [
    "MF",
    "ContentNeighbourhood",
    "FusionGNN",
    "LightGCN",
    "Popularity",
    "bpr_loss",
    "normalized_adjacency",
]
