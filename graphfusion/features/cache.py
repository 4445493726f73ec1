"""A feature cache keyed by content hash, in the store's data folder (SQLite).

Two tables: ``vectors`` maps (encoder, content hash) to a vector, so the same text or image is
never encoded twice, whatever node it belongs to; ``state`` maps (label, property, node key) to
the content hash its stored vector was computed from, so a run knows which nodes are up to date.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from graphfusion.errors import StoreError

__all__ = ["FeatureCache", "content_hash", "file_digest", "LOCK_WAIT_S"]

#: Seconds a write waits for another process's write to the same cache file to end.
LOCK_WAIT_S = 60.0


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (hex), read in blocks of 1 MiB.

    Raises:
        OSError: The file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def content_hash(*parts: str | bytes) -> str:
    """SHA-256 of the parts (each length-prefixed, so ``("ab", "c")`` != ``("a", "bc")``)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


class FeatureCache:
    """Vectors by content hash and per-node state, in one SQLite file.

    Args:
        path: The SQLite file (created with its folder when missing).

    Raises:
        StoreError: The file cannot be opened, read or written (not an SQLite file, damaged,
            the disk full, locked by another process for over :data:`LOCK_WAIT_S` seconds),
            here or in any method; the message names the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with self._errors():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=LOCK_WAIT_S)
            self._db.executescript(
                """
                PRAGMA journal_mode=WAL;
                CREATE TABLE IF NOT EXISTS vectors (
                    encoder TEXT NOT NULL, hash TEXT NOT NULL, dim INTEGER NOT NULL,
                    vector BLOB NOT NULL, PRIMARY KEY (encoder, hash));
                CREATE TABLE IF NOT EXISTS state (
                    label TEXT NOT NULL, prop TEXT NOT NULL, key TEXT NOT NULL,
                    hash TEXT NOT NULL, PRIMARY KEY (label, prop, key));
                """
            )

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite's and the file system's errors as a StoreError that names the file."""
        try:
            yield
        except (sqlite3.DatabaseError, OSError) as exc:
            damaged = getattr(exc, "sqlite_errorname", "") in ("SQLITE_NOTADB", "SQLITE_CORRUPT")
            hint = (
                "; it is damaged: delete it (the next embed encodes every node's content "
                "again; the store's vectors are kept)"
                if damaged
                else ""
            )
            raise StoreError(f"cannot use the feature cache {self.path}: {exc}{hint}") from None

    def get_vectors(
        self, encoder: str, hashes: Iterable[str], dim: int | None = None
    ) -> dict[str, np.ndarray]:
        """The cached vectors among ``hashes``.

        Args:
            encoder: The encoder's name.
            hashes: Content hashes.
            dim: Only vectors of this length (an encoder of one's own can keep its name while
                its size changes); any length when None. A row whose bytes do not hold as
                many 32-bit floats as its length says (damaged) is never returned.
        """
        out: dict[str, np.ndarray] = {}
        wanted = list(dict.fromkeys(hashes))
        sized = "" if dim is None else f" AND dim = {int(dim)}"
        with self._errors():
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    "SELECT hash, vector FROM vectors WHERE encoder = ? "
                    f"AND length(vector) = 4 * dim{sized} AND hash IN ({marks})",
                    [encoder, *part],
                )
                for h, blob in rows:
                    out[h] = np.frombuffer(blob, dtype=np.float32).copy()
        return out

    def put_vectors(self, encoder: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Cache vectors by content hash."""
        rows = [
            (encoder, h, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes())
            for h, v in vectors.items()
        ]
        with self._errors(), self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)

    def delete_vectors(self, encoder: str) -> None:
        """Forget every vector of one encoder."""
        with self._errors(), self._db:
            self._db.execute("DELETE FROM vectors WHERE encoder = ?", (encoder,))

    def get_state(self, label: str, prop: str) -> dict[str, str]:
        """Node key -> content hash of its stored vector, for one vector property."""
        with self._errors():
            rows = self._db.execute(
                "SELECT key, hash FROM state WHERE label = ? AND prop = ?", (label, prop)
            )
            return dict(rows)

    def put_state(self, label: str, prop: str, hashes: Mapping[str, str]) -> None:
        """Record which content each node's stored vector was computed from."""
        rows = [(label, prop, k, h) for k, h in hashes.items()]
        with self._errors(), self._db:
            self._db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?)", rows)

    def delete_state(self, label: str, prop: str, keys: Iterable[str]) -> None:
        """Forget the content of these nodes' stored vectors (their vectors were removed)."""
        rows = [(label, prop, k) for k in keys]
        with self._errors(), self._db:
            self._db.executemany("DELETE FROM state WHERE label = ? AND prop = ? AND key = ?", rows)

    def clear_state(self) -> None:
        """Forget which nodes are up to date (after the graph was reset)."""
        with self._errors(), self._db:
            self._db.execute("DELETE FROM state")

    def prune(self, keys: Callable[[str], Collection[str]]) -> int:
        """Forget the state of nodes that are gone, then every vector no node's stored vector
        was made from, and shrink the file.

        Args:
            keys: A label's node keys now in the store.

        Returns:
            The number of vectors dropped.
        """
        with self._errors():
            labels = [row[0] for row in self._db.execute("SELECT DISTINCT label FROM state")]
            with self._db:
                self._db.execute("CREATE TEMP TABLE IF NOT EXISTS present (key TEXT PRIMARY KEY)")
                for label in labels:
                    self._db.execute("DELETE FROM present")
                    self._db.executemany(
                        "INSERT OR IGNORE INTO present VALUES (?)", ((k,) for k in keys(label))
                    )
                    self._db.execute(
                        "DELETE FROM state WHERE label = ? "
                        "AND key NOT IN (SELECT key FROM present)",
                        (label,),
                    )
                dropped = self._db.execute(
                    "DELETE FROM vectors WHERE hash NOT IN (SELECT hash FROM state)"
                ).rowcount
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(dropped)

    def close(self) -> None:
        """Close the file."""
        self._db.close()
