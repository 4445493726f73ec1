"""Recommendation models: the fusion GNN, the baselines (popularity, MF-BPR, LightGCN) and the
content taste model."""

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
from graphfusion.models.taste import TasteModel, fit_taste

__all__ = [
    "MF",
    "ContentNeighbourhood",
    "FusionGNN",
    "LightGCN",
    "Popularity",
    "TasteModel",
    "bpr_loss",
    "fit_taste",
    "normalized_adjacency",
]
