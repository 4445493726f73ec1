"""Recommendation models: the baselines (popularity, MF-BPR, LightGCN); the fusion GNN follows."""

from __future__ import annotations

from graphfusion.models.baselines import (
    MF,
    LightGCN,
    Popularity,
    bpr_loss,
    normalized_adjacency,
)

__all__ = ["MF", "LightGCN", "Popularity", "bpr_loss", "normalized_adjacency"]
