"""Demographic features of users: age, gender and occupation as one numeric vector.

Unlike behaviour features they count no interaction, so a model may use them as input without
leaking held-out interactions. Age is standardized over the users who give one (0 where
missing); gender and occupation are one-hot over their most frequent values (at most
:data:`MAX_LEVELS` each, the rest and missing values all zeros).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from graphfusion.store.base import BaseStore

__all__ = ["demographic_features", "MAX_LEVELS"]

#: Most one-hot columns per categorical property.
MAX_LEVELS = 30


def _one_hot(column: pd.Series) -> pd.DataFrame:
    values = column.astype("string").str.strip().str.lower()
    values = values.where(values != "")
    top = values.value_counts().index[:MAX_LEVELS]
    return pd.DataFrame(
        {f"{column.name}={v}": (values == v).fillna(False).astype(float) for v in top},
        index=column.index,
    )


def demographic_features(store: BaseStore, ids: list[str]) -> np.ndarray | None:
    """The users' demographic matrix, rows in the order of ``ids``.

    Args:
        store: The store.
        ids: User keys.

    Returns:
        A float32 ``(len(ids), d)`` matrix, or None when no user has age, gender or occupation.
    """
    rows = store.query(
        "MATCH (u:User) RETURN u.id AS id, u.age AS age, u.gender AS gender, "
        "u.occupation AS occupation"
    )
    frame = pd.DataFrame.from_records(rows, columns=["id", "age", "gender", "occupation"])
    frame = frame.set_index("id").reindex(ids)
    parts = []
    age = pd.to_numeric(frame["age"], errors="coerce").astype(float)
    if age.notna().sum() > 1 and age.std() > 0:
        parts.append(((age - age.mean()) / age.std()).fillna(0.0).rename("age").to_frame())
    for name in ("gender", "occupation"):
        if frame[name].notna().any():
            parts.append(_one_hot(frame[name]))
    if not parts:
        return None
    return pd.concat(parts, axis=1).to_numpy(dtype=np.float32)
