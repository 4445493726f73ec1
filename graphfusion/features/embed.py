"""Computing modality vectors for every node that has content, and writing them to the store.

For every vector property of the schema with an ``encoder`` of ``text``, ``image`` or
``behaviour`` (e.g. ``Product.text_vec``, ``Image.image_vec``, ``User.behaviour_vec``), a run
reads the nodes' content in one query per property, skips nodes whose stored vector was made
from the same content (content hash), takes vectors for known content from the cache, encodes
the rest in batches, and writes them back. A second run recomputes nothing. Nodes whose content
cannot be encoded (no text, a missing or corrupt image) get an entry in the error report; the
others proceed and nothing stored is lost. A vector that an earlier run made from content the
node no longer has (its text removed, its photo replaced by a broken file) is removed, and the
report says so: it no longer describes the node. Its content's vector stays in the cache, so
when the content comes back the vector does too, without encoding. A vector written from
outside (:func:`write_vectors`) on a node without content is left alone.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphfusion.errors import ValidationError
from graphfusion.features.base import EncodeResult
from graphfusion.features.cache import FeatureCache, content_hash, file_digest
from graphfusion.features.text import has_visible_character
from graphfusion.readers import ARCHIVE_SEP, split_archive
from graphfusion.reports import default_report_path, write_rows
from graphfusion.schema import Property
from graphfusion.store.base import BaseStore
from graphfusion.values import is_missing, vector_faults

__all__ = [
    "EmbedError",
    "EmbedReport",
    "embed",
    "modalities",
    "write_vectors",
    "read_vectors",
    "MODALITIES",
    "cache_for",
]

log = logging.getLogger("graphfusion.features")

MODALITIES = ("text", "image", "behaviour")
WRITE_BATCH = 2_000


@dataclass(frozen=True)
class EmbedError:
    """A node whose vector could not be computed or written."""

    label: str
    key: str
    prop: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """As a plain dict (one line of the report)."""
        return {"label": self.label, "key": self.key, "prop": self.prop, "reason": self.reason}


@dataclass
class EmbedReport:
    """What an embed run did, per ``Label.property``.

    Attributes:
        encoded: Vectors computed by an encoder.
        cached: Vectors taken from the content cache (same content seen before).
        unchanged: Nodes whose stored vector was already up to date.
        errors: Nodes that got no vector, with the reason.
        report_path: The error report written, if any.
        seconds: Wall time.
        pruned: Vectors dropped from the content cache (``prune_cache``).
    """

    encoded: dict[str, int] = field(default_factory=dict)
    cached: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    errors: list[EmbedError] = field(default_factory=list)
    report_path: Path | None = None
    seconds: float = 0.0
    pruned: int = 0

    def summary(self) -> str:
        """A few lines for people."""
        lines = []
        for name in sorted(set(self.encoded) | set(self.cached) | set(self.unchanged)):
            lines.append(
                f"{name:<24} encoded {self.encoded.get(name, 0):>7}  "
                f"from cache {self.cached.get(name, 0):>7}  "
                f"up to date {self.unchanged.get(name, 0):>7}"
            )
        where = f" (report: {self.report_path})" if self.report_path else ""
        lines.append(f"{len(self.errors)} nodes without a vector{where}; {self.seconds:.1f} s")
        if self.pruned:
            lines.append(f"{self.pruned} vectors no node uses dropped from the cache")
        for err in self.errors[:5]:
            lines.append(f"  {err.label} {err.key} {err.prop}: {err.reason}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """As plain data (for ``--json``)."""
        return {
            "encoded": self.encoded,
            "cached": self.cached,
            "unchanged": self.unchanged,
            "errors": len(self.errors),
            "report": str(self.report_path) if self.report_path else None,
            "seconds": round(self.seconds, 3),
            "pruned": self.pruned,
        }


def cache_for(store: BaseStore) -> FeatureCache:
    """The feature cache of a store: in its folder; for a store without one (Neo4j), in a
    folder of its own (the database's name and a digest of the server's address and the
    database) under ``$GRAPHFUSION_CACHE``, by default ``./.graphfusion-cache``. The cache
    says which nodes' vectors are up to date by node key alone, so two databases must not
    share one."""
    folder = getattr(store, "cache_dir", None)
    if folder is None:
        base = Path(os.environ.get("GRAPHFUSION_CACHE", ".graphfusion-cache"))
        uri, database = str(getattr(store, "uri", "")), str(getattr(store, "database", ""))
        name = re.sub(r"[^A-Za-z0-9._-]", "_", database)[:60]
        folder = base / f"{name}-{content_hash(uri, database)[:12]}"
    return FeatureCache(Path(folder) / "features.sqlite")


def write_vectors(
    store: BaseStore,
    label: str,
    prop: str,
    keys: Sequence[str],
    vectors: np.ndarray | Sequence[Sequence[float]],
    *,
    zero_ok: bool = True,
) -> tuple[int, list[EmbedError]]:
    """Write vectors to a vector property, checking each one.

    Rows with NaN or infinite values (as the 32-bit floats stored), the wrong dimension, or
    keys that are not in the store are reported, not written; the others are.

    Args:
        store: The store.
        label: A label of the schema.
        prop: One of its vector properties.
        keys: Node keys, one per row of ``vectors``.
        vectors: ``(len(keys), dim)`` numbers.
        zero_ok: Write all-zero rows. When False they are reported (a zero vector has no
            direction, so no cosine similarity; values that round to zero as the 32-bit
            floats stored count as zero): vectors from outside
            (:meth:`graphfusion.Engine.add_vectors`).

    Returns:
        The number written and the errors.

    Raises:
        SchemaError: Unknown label or property.
        ValidationError: ``prop`` is not a vector, the shapes do not match, ``keys`` is one
            string (not a list of keys) or names a key twice.
    """
    if isinstance(keys, str):
        raise ValidationError("keys must be a list of keys, not one string")
    repeated = [k for k, n in Counter(str(k) for k in keys).items() if n > 1]
    if repeated:
        raise ValidationError(f"keys must be unique; repeated: {repeated[:3]}")
    node = store.schema.node(label)
    ptype = node.prop(prop).type
    if not ptype.is_vector:
        raise ValidationError(f"{label}.{prop} is not a vector property")
    try:
        matrix = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError("vectors must be numbers") from None
    if matrix.ndim != 2 or matrix.shape[0] != len(keys):
        raise ValidationError(
            f"vectors must have shape ({len(keys)}, {ptype.dim}), got {matrix.shape}"
        )
    if matrix.shape[1] != ptype.dim:
        raise ValidationError(f"{label}.{prop} has dimension {ptype.dim}, got {matrix.shape[1]}")
    errors: list[EmbedError] = []
    faults = vector_faults(matrix)
    if not zero_ok:
        with np.errstate(over="ignore"):
            stored_zero = ~np.asarray(matrix, dtype=np.float32).any(axis=1)  # NaN is not zero
        for i in np.flatnonzero(stored_zero).tolist():
            how = "" if not matrix[i].any() else " as 32-bit floats"
            faults[i] = f"vector is all zeros{how} (it has no direction)"
    key_list = [str(k) for k in keys]
    present = store.existing_keys(label, key_list)
    rows = []
    for i, key in enumerate(key_list):
        fault = faults[i]
        if fault is not None:
            errors.append(EmbedError(label, key, prop, fault))
        elif key not in present:
            errors.append(EmbedError(label, key, prop, f"no {label} with this key"))
        else:
            rows.append({node.key: key, prop: matrix[i].astype(np.float32).tolist()})
    store.write_node_rows(label, rows, batch_size=WRITE_BATCH)
    return len(rows), errors


def read_vectors(store: BaseStore, label: str, prop: str, keys: Sequence[str]) -> np.ndarray:
    """The stored vectors of a vector property, one row per key in ``keys``' order (NaN rows
    for nodes without one, not in the store, or with one of another size than the schema's,
    written through raw Cypher), read in one query.

    Raises:
        SchemaError: Unknown label or property.
        ValidationError: ``prop`` is not a vector, or ``keys`` is one string.
    """
    node = store.schema.node(label)
    ptype = node.prop(prop).type
    if not ptype.is_vector:
        raise ValidationError(f"{label}.{prop} is not a vector property")
    if isinstance(keys, str):
        raise ValidationError(f"keys must be a list of keys, not one string ({keys!r})")
    table = store.query_arrow(
        f"MATCH (n:{label}) WHERE n.{prop} IS NOT NULL RETURN n.{node.key} AS k, n.{prop} AS v"
    )
    found = dict(zip(table.column("k").to_pylist(), table.column("v").to_pylist(), strict=True))
    out = np.full((len(keys), ptype.dim or 0), np.nan)
    for row, key in enumerate(keys):
        if key in found and len(found[key]) == out.shape[1]:  # one of another size: none
            out[row] = found[key]
    return out


# ----------------------------------------------------------------------------- content


def text_content(row: dict[str, Any], inputs: Sequence[str]) -> str | None:
    """The text a node's ``inputs`` properties give, joined with ". "; None when none of them
    holds a visible character (a letter, digit, punctuation mark or symbol: a title of only
    zero-width or control characters is no text)."""
    parts = [str(row[name]).strip() for name in inputs if not is_missing(row.get(name))]
    text = ". ".join(p for p in parts if has_visible_character(p))
    return text or None


class _ImageFingerprints:
    """What an image's vector is made from: the SHA-256 of the bytes of the file (or of the
    archive, and the member's name) holding it, so a photo replaced in place is encoded again
    whatever its size and modification time, and a copied or moved store of photos is not.
    Each file is read once per run (an archive holding many photos once)."""

    def __init__(self) -> None:
        self._digests: dict[str, str | None] = {}

    def __call__(self, path: str) -> str:
        file, member = path, ""
        if ARCHIVE_SEP in path and not os.path.isfile(path):
            split = split_archive(path)
            if split is None:
                return f"{path}:missing"
            file, member = split
        if file not in self._digests:
            # only a regular file (os.path.isfile: S_ISREG, links followed) is read: a FIFO
            # would wait for a writer forever, /dev/zero never end; the encoder reports why
            try:
                self._digests[file] = file_digest(file) if os.path.isfile(file) else None
            except OSError:
                self._digests[file] = None
        digest = self._digests[file]
        if digest is None:
            return f"{path}:missing"
        return f"{digest}{ARCHIVE_SEP}{member}" if member else digest


# ----------------------------------------------------------------------------- the run


def _check_keys(store: BaseStore, keys: Mapping[str, Collection[str]]) -> dict[str, set[str]]:
    """``embed``'s ``keys`` as sets, or ValidationError."""
    if not isinstance(keys, Mapping):
        raise ValidationError("keys must map node labels to lists of node keys")
    out: dict[str, set[str]] = {}
    for label, some in keys.items():
        if label not in store.schema.nodes:
            raise ValidationError(f"keys name the label {label!r}, which the schema lacks")
        if isinstance(some, str) or not all(isinstance(k, str) for k in some):
            raise ValidationError(f"keys[{label!r}] must be a list of text keys")
        out[label] = set(some)
    return out


def _node_keys(store: BaseStore, label: str) -> list[str]:
    """The keys of a label's nodes in the store (none for a label the schema no longer has)."""
    if label not in store.schema.nodes:
        return []
    key = store.schema.node(label).key
    keys = store.query_arrow(f"MATCH (n:{label}) RETURN n.{key} AS k")["k"].to_pylist()
    return [str(k) for k in keys]


class _Run:
    def __init__(
        self,
        store: BaseStore,
        cache: FeatureCache,
        report: EmbedReport,
        progress: bool,
        keys: dict[str, set[str]] | None = None,
    ) -> None:
        self.store = store
        self.cache = cache
        self.report = report
        self.progress = progress
        self.keys = keys  # only these nodes, by label; all when None

    def content_rows(self, label: str, prop: Property) -> list[dict[str, Any]]:
        node = self.store.schema.node(label)
        cols = ", ".join(f"n.{name} AS {name}" for name in prop.type.inputs)
        where, params = "", {}
        if self.keys is not None:
            if not self.keys.get(label):
                return []
            where, params = f" WHERE n.{node.key} IN $keys", {"keys": sorted(self.keys[label])}
        query = (
            f"MATCH (n:{label}){where} RETURN n.{node.key} AS key, {cols}, "
            f"n.{prop.name} IS NULL AS missing"
        )
        table = self.store.query_arrow(query, params)
        return table.to_pylist() if table.num_rows else []

    def run_encoder(
        self,
        label: str,
        prop: Property,
        encoder_name: str,
        contents: dict[str, Any],
        hashes: dict[str, str],
        missing: set[str],
        encode: Callable[[list[Any]], EncodeResult],
        absent: Mapping[str, str] | None = None,
        *,
        keep: bool = True,
    ) -> None:
        """Vectors for ``contents`` (key -> content) whose hash changed or vector is missing.

        ``absent`` maps the keys of nodes without content to the reason. Such a node, or one
        whose new content cannot be encoded, loses the vector an earlier run made from its
        old content (one the state knows of). ``keep``: look vectors up in the content cache
        and keep the new ones there (False for vectors that cost nothing to make again)."""
        name = f"{label}.{prop.name}"
        state = self.cache.get_state(label, prop.name)
        failures = dict(absent or {})
        todo = [k for k in contents if k in missing or state.get(k) != hashes[k]]
        self.report.unchanged[name] = len(contents) - len(todo)
        wanted = (hashes[k] for k in todo)
        cached = self.cache.get_vectors(encoder_name, wanted, prop.type.dim) if keep else {}
        fresh = [k for k in todo if hashes[k] not in cached]
        # the same content once, even when several nodes share it
        unique: dict[str, str] = {}
        for key in fresh:
            unique.setdefault(hashes[key], key)
        new_vectors: dict[str, np.ndarray] = {}
        failed: dict[str, str] = {}
        if unique:
            order = list(unique.items())
            result = encode([contents[key] for _, key in order])
            for row, index in enumerate(result.ok):
                new_vectors[order[index][0]] = result.vectors[row]
            for index, reason in result.errors.items():
                failed[order[index][0]] = reason
        if keep:
            self.cache.put_vectors(encoder_name, new_vectors)
        vectors = {**cached, **new_vectors}
        keys = [k for k in todo if hashes[k] in vectors]
        failures.update((k, failed[hashes[k]]) for k in todo if hashes[k] in failed)
        stale = [k for k in failures if k in state and k not in missing]
        self.remove_vectors(label, prop.name, stale)
        for key in stale:
            failures[key] += "; its vector, made from earlier content, was removed"
        for key, reason in failures.items():
            self.report.errors.append(EmbedError(label, key, prop.name, reason))
        self.report.encoded[name] = sum(1 for k in keys if hashes[k] in new_vectors)
        self.report.cached[name] = len(keys) - self.report.encoded[name]
        if keys:
            matrix = np.stack([vectors[hashes[k]] for k in keys])
            _, errors = write_vectors(self.store, label, prop.name, keys, matrix)
            self.report.errors.extend(errors)
            self.cache.put_state(label, prop.name, {k: hashes[k] for k in keys})

    def remove_vectors(self, label: str, prop: str, keys: list[str]) -> None:
        """Set these nodes' vector property to null and forget its content."""
        if not keys:
            return
        key = self.store.schema.node(label).key
        for start in range(0, len(keys), WRITE_BATCH):
            self.store.query(
                f"MATCH (n:{label}) WHERE n.{key} IN $keys SET n.{prop} = NULL",
                {"keys": keys[start : start + WRITE_BATCH]},
            )
        self.cache.delete_state(label, prop, keys)

    def content_vectors(self, kind: str, encoder: Any) -> None:
        fingerprint_of = _ImageFingerprints()  # one read of each file for all the properties
        for label, prop in self.store.schema.vector_properties():
            if prop.type.encoder != kind:
                continue
            rows = self.content_rows(label, prop)
            contents: dict[str, Any] = {}
            hashes: dict[str, str] = {}
            absent: dict[str, str] = {}  # key -> why there is no content
            missing = {r["key"] for r in rows if r["missing"]}
            for row in rows:
                key = row["key"]
                if kind == "text":
                    content = text_content(row, prop.type.inputs)
                    if content is None:
                        absent[key] = f"no text in {', '.join(prop.type.inputs)}"
                        continue
                    fingerprint = content
                else:
                    content = row.get(prop.type.inputs[0])
                    if is_missing(content):
                        absent[key] = f"no {prop.type.inputs[0]}"
                        continue
                    fingerprint = fingerprint_of(str(content))
                contents[key] = content
                hashes[key] = content_hash(encoder.name, fingerprint)

            def encode(items: list[Any], label: str = label, prop: Property = prop) -> EncodeResult:
                if encoder.dim != prop.type.dim:
                    raise ValidationError(
                        f"the {kind} encoder {encoder.name} gives {encoder.dim}-d vectors but "
                        f"{label}.{prop.name} has dimension {prop.type.dim} in the schema; "
                        "change the schema's dim or use another model"
                    )
                result: EncodeResult = encoder.encode_many(items, progress=self.progress)
                return result

            self.run_encoder(label, prop, encoder.name, contents, hashes, missing, encode, absent)

    def behaviour_vectors(self) -> None:
        """Behaviour vectors are computed whole on every run and move with every new
        interaction (they are standardized over the label): the content cache keeps none
        (each run after new interactions added a row for every node, forever), and drops
        those an earlier version kept."""
        from graphfusion.features.behaviour import behaviour_features

        self.cache.delete_vectors("behaviour")
        for label, prop in self.store.schema.vector_properties():
            if prop.type.encoder != "behaviour":
                continue
            if self.keys is not None and not self.keys.get(label):
                continue
            frame = behaviour_features(self.store, label)
            if frame.shape[1] != prop.type.dim:
                raise ValidationError(
                    f"{label} has {frame.shape[1]} behaviour features; "
                    f"{label}.{prop.name} has dimension {prop.type.dim} in the schema"
                )
            rows = self.store.query(
                f"MATCH (n:{label}) WHERE n.{prop.name} IS NULL RETURN n.id AS key"
            )
            missing = {r["key"] for r in rows}
            values = frame.to_numpy(dtype=np.float32)
            contents = {str(k): values[i] for i, k in enumerate(frame.index)}
            if self.keys is not None:
                contents = {k: v for k, v in contents.items() if k in self.keys[label]}
            hashes = {
                k: content_hash("behaviour", v.round(5).tobytes()) for k, v in contents.items()
            }

            def identity(items: list[Any]) -> EncodeResult:
                return EncodeResult(np.stack(items), list(range(len(items))), {})

            self.run_encoder(
                label, prop, "behaviour", contents, hashes, missing, identity, keep=False
            )


def modalities(only: Sequence[str] | str | None) -> list[str]:
    """The modalities ``only`` names (every one when None), in :data:`MODALITIES` order.

    Raises:
        ValidationError: Not a modality name or a collection of them, or an empty one (which
            would embed nothing in silence).
    """
    if only is None:
        return list(MODALITIES)
    names = [only] if isinstance(only, str) else only
    if not isinstance(names, Collection) or not all(isinstance(k, str) for k in names):
        raise ValidationError(f"only must be a modality name or a list of them, got {only!r}")
    if not names:
        raise ValidationError(f"only names no modality; give some of {', '.join(MODALITIES)}")
    unknown = [k for k in names if k not in MODALITIES]
    if unknown:
        raise ValidationError(f"unknown modality {unknown}; use {', '.join(MODALITIES)}")
    return [k for k in MODALITIES if k in names]


def embed(
    store: BaseStore,
    *,
    only: Sequence[str] | str | None = None,
    text_encoder: Any | None = None,
    image_encoder: Any | None = None,
    report: str | Path | None = None,
    progress: bool = False,
    keys: Mapping[str, Collection[str]] | None = None,
    prune_cache: bool = False,
) -> EmbedReport:
    """Compute and store modality vectors for every node that needs one.

    Args:
        store: The store.
        only: Some of ``text``, ``image``, ``behaviour``; all when None.
        text_encoder: A :class:`~graphfusion.features.TextEncoder` (default model when None).
        image_encoder: An :class:`~graphfusion.features.ImageEncoder` (default when None).
        report: Where to write the nodes that got no vector (JSON lines); by default, when
            there are any, ``reports/embed-<time>.jsonl`` in the store folder.
        progress: Show progress bars.
        keys: Only these nodes, by label (``{"Product": [...], "Image": [...]}``: new
            products, say); every node when None. Behaviour features are still computed over
            the whole store, which scales them, and written for these nodes only; the others
            are brought up to date by the next run without ``keys``.
        prune_cache: Afterwards, drop from the content cache every vector that no node's
            stored vector was made from (content since changed, nodes since deleted) and
            shrink its file; such content, should it come back, is encoded again.

    Returns:
        What was encoded, cached, up to date, and the errors.

    Raises:
        ValidationError: An unknown modality, or an encoder whose dimension does not fit;
            ``keys`` that are not text keys of labels of the schema.
    """
    kinds = modalities(only)
    if not isinstance(prune_cache, bool):
        raise ValidationError(f"prune_cache must be True or False, got {prune_cache!r}")
    chosen = None if keys is None else _check_keys(store, keys)
    for kind, given in (("text", text_encoder), ("image", image_encoder)):
        if given is not None and not (
            isinstance(getattr(given, "name", None), str)
            and isinstance(getattr(given, "dim", None), int)
            and callable(getattr(given, "encode_many", None))
        ):
            raise ValidationError(
                f"{kind}_encoder must be an encoder (name, dim and encode_many, as "
                f"{kind.capitalize()}Encoder), got {type(given).__name__}"
            )
    started = time.perf_counter()
    result = EmbedReport()
    cache = cache_for(store)
    try:
        run = _Run(store, cache, result, progress, chosen)
        if "text" in kinds:
            from graphfusion.features.text import TextEncoder

            run.content_vectors("text", text_encoder or TextEncoder())
        if "image" in kinds:
            from graphfusion.features.image import ImageEncoder

            run.content_vectors("image", image_encoder or ImageEncoder())
        if "behaviour" in kinds:
            run.behaviour_vectors()
        if prune_cache:
            result.pruned = cache.prune(lambda label: _node_keys(store, label))
    finally:
        cache.close()
    result.seconds = time.perf_counter() - started
    if report is not None or result.errors:
        path = report or default_report_path(store, "embed")
        rows = [e.to_dict() for e in result.errors]
        result.report_path = write_rows(rows, path, ("label", "key", "prop", "reason"))
    return result
