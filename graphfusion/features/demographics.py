"""Demographic features of users: age, gender and occupation as one numeric vector.

Unlike behaviour features they count no interaction, so a model may use them as input without
leaking held-out interactions. Age is standardized over the users who give one (0 where
missing); gender and occupation are one-hot over their most frequent values (at most
:data:`MAX_LEVELS` each, the rest and missing values all zeros).

The scaling and the one-hot columns are fitted once (:func:`fit_demographics`, at training)
and kept with the model: users added later get the same columns, so a new occupation, or one
that became more frequent, does not move the others (an unseen value is all zeros).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from graphfusion.errors import ValidationError
from graphfusion.store.base import BaseStore

__all__ = ["Demographics", "demographic_features", "fit_demographics", "MAX_LEVELS"]

#: Most one-hot columns per categorical property.
MAX_LEVELS = 30
#: The categorical properties, in column order (after age).
CATEGORICAL = ("gender", "occupation")


@dataclass(frozen=True)
class Demographics:
    """How users' demographics become columns (fitted by :func:`fit_demographics`).

    Attributes:
        age: The mean and standard deviation that standardize age; None: no age column.
        levels: Per categorical property, the values that get a one-hot column, in order.
    """

    age: tuple[float, float] | None = None
    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def width(self) -> int:
        """Number of columns."""
        return (self.age is not None) + sum(len(v) for v in self.levels.values())

    def blocks(self) -> list[slice]:
        """The columns of age and of each one-hot property, in column order
        (:func:`graphfusion.light.peer_rows` matches a user on the ones they gave)."""
        out, start = [], 0
        if self.age is not None:
            out.append(slice(0, 1))
            start = 1
        for values in self.levels.values():
            if values:
                out.append(slice(start, start + len(values)))
                start += len(values)
        return out

    def to_dict(self) -> dict[str, Any]:
        """As plain values (kept in a checkpoint)."""
        return {
            "age": list(self.age) if self.age is not None else None,
            "levels": {k: list(v) for k, v in self.levels.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Demographics:
        """The inverse of :meth:`to_dict`.

        Raises:
            ValidationError: Not the shape :meth:`to_dict` gives.
        """
        try:
            age = data.get("age")
            levels = {str(k): tuple(str(x) for x in v) for k, v in data["levels"].items()}
            return cls(None if age is None else (float(age[0]), float(age[1])), levels)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValidationError(f"not a saved demographics encoding: {exc}") from None


def _frame(store: BaseStore, ids: list[str]) -> pd.DataFrame:
    """The users' demographics; a property the schema's User lacks is missing for all."""
    user = store.schema.node("User")
    read = [n for n in ("age", *CATEGORICAL) if user.has_property(n)]
    rows = store.query("MATCH (u:User) RETURN " + ", ".join(f"u.{n} AS {n}" for n in ["id", *read]))
    frame = pd.DataFrame.from_records(rows, columns=["id", "age", *CATEGORICAL])
    frame = frame.set_index("id").reindex(ids)
    frame["age"] = pd.to_numeric(frame["age"], errors="coerce").astype(float)
    for name in CATEGORICAL:
        values = frame[name].astype("string").str.strip().str.lower()
        frame[name] = values.where(values != "")
    return frame


def fit_demographics(store: BaseStore, ids: list[str]) -> Demographics:
    """The age scaling and one-hot values of the users ``ids`` (the most frequent values
    first, ties in the order pandas counts them).

    Args:
        store: The store.
        ids: User keys.
    """
    return _fit(_frame(store, ids))


def _fit(frame: pd.DataFrame) -> Demographics:
    age = frame["age"]
    enough = age.notna().sum() > 1 and age.std() > 0
    levels = {
        name: tuple(str(v) for v in frame[name].value_counts().index[:MAX_LEVELS])
        for name in CATEGORICAL
        if frame[name].notna().any()
    }
    return Demographics((float(age.mean()), float(age.std())) if enough else None, levels)


def demographic_features(
    store: BaseStore, ids: list[str], encoding: Demographics | None = None
) -> np.ndarray | None:
    """The users' demographic matrix, rows in the order of ``ids``.

    Args:
        store: The store.
        ids: User keys.
        encoding: The columns fitted before (a model's); fitted on ``ids`` when None.

    Returns:
        A float32 ``(len(ids), encoding.width)`` matrix, or None when there are no columns
        (no user had age, gender or occupation).
    """
    frame = _frame(store, ids)
    encoding = encoding if encoding is not None else _fit(frame)
    if encoding.width == 0:
        return None
    parts = []
    if encoding.age is not None:
        mean, std = encoding.age
        parts.append(((frame["age"] - mean) / std).fillna(0.0).to_numpy()[:, None])
    for name, values in encoding.levels.items():
        column = frame[name]
        if values:
            parts.append(np.stack([(column == v).fillna(False).to_numpy(float) for v in values], 1))
    return np.concatenate(parts, axis=1).astype(np.float32)
