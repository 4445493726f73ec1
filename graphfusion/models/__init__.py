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

__all__ = ["MF", "FusionGNN", "LightGCN", "Popularity", "bpr_loss", "normalized_adjacency"]
