"""``Engine``: the one object that ties graphfusion together for users.

Example:
    >>> import graphfusion
    >>> engine = graphfusion.Engine("shop-store")          # embedded LadybugDB  # doctest: +SKIP
    >>> engine.load("synthetic", shop="data/shop")                             # doctest: +SKIP
    >>> engine.cypher("MATCH (p:Product) RETURN count(p) AS n")                # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphfusion.defects import DefectAnalysis, analyse
from graphfusion.errors import ValidationError
from graphfusion.features.embed import (
    EmbedError,
    EmbedReport,
    cache_for,
    embed,
    modalities,
    write_vectors,
)
from graphfusion.ingest import LoadReport, load
from graphfusion.mapping import LoaderMapping
from graphfusion.qa import QAIndex, QAResult, write_passages
from graphfusion.recalls import RecallReport, recall_report
from graphfusion.recommend import Reason, Recommender
from graphfusion.schema import Schema
from graphfusion.search import similar
from graphfusion.store import BaseStore, Counts, EmbeddedStore, Neo4jStore
from graphfusion.store.cypher import may_write
from graphfusion.train import TrainConfig, TrainResult, train

__all__ = ["Engine"]


class Engine:
    """The graph, its features, models and applications, on one store.

    Args:
        store: Folder of the embedded store (default ``$GRAPHFUSION_STORE`` or
            ``./.graphfusion``), or an already open store.
        schema: The graph schema; the built-in e-commerce schema when None.
        read_only: Open the embedded store read-only.
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | BaseStore | None = None,
        *,
        schema: Schema | None = None,
        read_only: bool = False,
    ) -> None:
        if isinstance(store, BaseStore):
            self.store: BaseStore = store
        else:
            self.store = EmbeddedStore(store, schema=schema, read_only=read_only)
        self._recommender: Recommender | None = None
        self._qa: QAIndex | None = None
        self._qa_weights: dict[str, np.ndarray] | None = None  # kept over new products
        self._defects: DefectAnalysis | None = None

    @classmethod
    def connect(
        cls,
        uri: str | None = None,
        *,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        schema: Schema | None = None,
        read_only: bool = False,
    ) -> Engine:
        """An engine on a Neo4j server (settings default to the ``NEO4J_*`` variables;
        ``read_only``: every statement in a read transaction, see
        :class:`~graphfusion.store.Neo4jStore`)."""
        store = Neo4jStore(
            uri, user=user, password=password, database=database, schema=schema,
            read_only=read_only,
        )  # fmt: skip
        return cls(store)

    @property
    def schema(self) -> Schema:
        """The graph schema."""
        return self.store.schema

    def load(
        self,
        mapping: str | Path | LoaderMapping,
        sources: Mapping[str, Any] | None = None,
        *,
        report: str | Path | None = None,
        batch_size: int | None = None,
        progress: bool = False,
        **named_sources: Any,
    ) -> LoadReport:
        """Load sources through a loader mapping (see :func:`graphfusion.ingest.load`).

        Sources can be given as a mapping or as keyword arguments:
        ``engine.load("amazon_qa", qa="qa_Appliances.json.gz")``.
        """
        all_sources = dict(sources or {})
        all_sources.update(named_sources)
        self._forget()
        return load(
            self.store,
            mapping,
            all_sources,
            report=report,
            batch_size=batch_size,
            progress=progress,
        )

    def embed(
        self,
        only: Sequence[str] | str | None = None,
        *,
        text_encoder: Any | None = None,
        image_encoder: Any | None = None,
        report: str | Path | None = None,
        progress: bool = False,
    ) -> EmbedReport:
        """Make the review passages (:func:`graphfusion.qa.write_passages`), then compute text,
        image and behaviour vectors where missing or out of date.

        See :func:`graphfusion.features.embed`. A second run recomputes nothing.
        """
        if "Passage" in self.store.schema.nodes and "text" in modalities(only):
            write_passages(self.store)
        # the recommender too: new vectors may be inputs the served model was not trained on,
        # which it then refuses; or new behaviour vectors
        self._forget()
        return embed(
            self.store,
            only=only,
            text_encoder=text_encoder,
            image_encoder=image_encoder,
            report=report,
            progress=progress,
        )

    def add_vectors(
        self, label: str, prop: str, keys: Sequence[str], vectors: Any
    ) -> tuple[int, list[EmbedError]]:
        """Write vectors computed elsewhere, checking each one.

        Bad rows are reported, not written, and the others are written: rows with NaN or
        infinite values, all-zero rows (a zero vector has no direction, so no cosine
        similarity; values that round to zero as the 32-bit floats stored count as zero) and
        keys that are not in the store. See :func:`graphfusion.features.embed.write_vectors`.

        Args:
            label: A label of the schema.
            prop: One of its vector properties.
            keys: Node keys, one per row of ``vectors``.
            vectors: ``(len(keys), dim)`` numbers.

        A written vector is the node's own: :meth:`embed` no longer takes it for one it made
        (it does not remove it when the node's content goes); where the node has content for
        the property's encoder, the next :meth:`embed` encodes it again and replaces it.

        Returns:
            The number written and the errors, in the order of ``keys``.

        Raises:
            SchemaError: Unknown label or property.
            ValidationError: ``prop`` is not a vector, the shapes do not match, ``keys`` is
                one string (not a list of keys) or names a key twice.
        """
        written, errors = write_vectors(self.store, label, prop, keys, vectors, zero_ok=False)
        if written:
            self._forget()  # the served parts read the vectors
            bad = {e.key for e in errors}
            cache = cache_for(self.store)
            try:
                cache.delete_state(label, prop, [k for k in map(str, keys) if k not in bad])
            finally:
                cache.close()
        return written, errors

    def similar(self, product_id: str, modality: str = "text", k: int = 10) -> pd.DataFrame:
        """The ``k`` products most similar to ``product_id`` by ``modality`` (with scores)."""
        return similar(self.store, product_id, modality, k)

    def train(
        self,
        model: str = "lightgcn",
        *,
        epochs: int = 50,
        progress: bool = False,
        **settings: Any,
    ) -> TrainResult:
        """Train a recommendation model and write ``fused_vec`` and ``rec_vec`` back (see
        :func:`graphfusion.train.train`; ``settings`` are :class:`TrainConfig` fields).

        The behaviour vectors are brought up to date first (``embed(only="behaviour")``):
        live interactions and new products move them, and training reads them from the
        store."""
        try:
            config = TrainConfig(model=model, epochs=epochs, **settings)
        except TypeError as exc:
            raise ValidationError(f"unknown training setting: {exc}") from None
        config.check()  # before the behaviour vectors are written
        embed(self.store, only="behaviour")
        result = train(self.store, config, progress=progress)
        self._recommender = None  # serve the new model
        return result

    # ------------------------------------------------------------------ recommendation
    def recommender(self) -> Recommender:
        """The serving state of the last trained model (built on first use, rebuilt after
        :meth:`train`); see :mod:`graphfusion.recommend`."""
        if self._recommender is None:
            self._recommender = Recommender(self.store)
        return self._recommender

    def recommend(
        self,
        user_id: str,
        k: int = 10,
        *,
        category: str | None = None,
        brand: str | None = None,
        max_price: float | None = None,
        exclude_seen: bool = True,
        diversity: float = 0.0,
        explain: bool = True,
    ) -> pd.DataFrame:
        """Top-``k`` products for a user with their reasons (``explain=False``: without, and
        faster; see :meth:`graphfusion.recommend.Recommender.recommend`)."""
        return self.recommender().recommend(
            user_id, k, category=category, brand=brand, max_price=max_price,
            exclude_seen=exclude_seen, diversity=diversity, explain=explain,
        )  # fmt: skip

    def explain(self, user_id: str, product_id: str) -> list[Reason]:
        """The graph evidence linking a user to a product, strongest first."""
        return self.recommender().explain(user_id, product_id)

    def add_interactions(self, frame: pd.DataFrame) -> LoadReport:
        """Store new interactions and update the served vectors without retraining."""
        try:
            return self.recommender().add_interactions(frame)
        except Exception:
            self._recommender = None  # it may be half updated: rebuilt from the store
            raise

    def add_products(self, frame: pd.DataFrame) -> LoadReport:
        """Store new products and give them fused vectors through the content path."""
        if self._qa is not None and self._qa.fusion_weights:
            self._qa_weights = self._qa.fusion_weights  # new products: same weights
        self._qa, self._defects = None, None  # rebuilt with the new products on next use
        try:
            return self.recommender().add_products(frame)
        except Exception:
            self._recommender = None  # it may be half updated: rebuilt from the store
            raise

    # ------------------------------------------------------------------ QA linking
    def ask(
        self, question: str, product_id: str | None = None, k: int = 5, method: str = "fusion"
    ) -> QAResult:
        """Link a customer question to products, past answers and review passages (see
        :meth:`graphfusion.qa.QAIndex.ask`; the index is built on first use)."""
        return self.qa_index().ask(question, product_id, k, method)

    def qa_index(self) -> QAIndex:
        """The QA index of the store (built on first use, again after a load, an embed or
        new products)."""
        if self._qa is None:
            self._qa = QAIndex(self.store, fusion_weights=self._qa_weights)
        return self._qa

    # ------------------------------------------------------------------ defects
    def defect_analysis(self) -> DefectAnalysis:
        """Evidence and propagated risk for every product, batch and supplier (see
        :mod:`graphfusion.defects`; computed on first use, again after a load or embed)."""
        if self._defects is None:
            self._defects = analyse(self.store)
        return self._defects

    def defects(self, level: str = "supplier", top: int = 20) -> pd.DataFrame:
        """The riskiest suppliers, batches or products with their main evidence and the
        products at risk that share them."""
        return self.defect_analysis().ranking(level, top)

    def defect_evidence(self, node_key: str, level: str | None = None) -> list[dict[str, Any]]:
        """Evidence paths of a supplier, batch or product, strongest first (``level``: which,
        when the key names several; see :meth:`DefectAnalysis.evidence_paths`)."""
        return self.defect_analysis().evidence_paths(node_key, level)

    def recalls(self, min_recalls: int = 2) -> RecallReport:
        """Firms named by ``min_recalls`` or more recalls and the hazard types that cluster
        on firms (see :mod:`graphfusion.recalls`; load recalls first, e.g. ``cpsc_recalls``)."""
        return recall_report(self.store, min_recalls=min_recalls)

    def stats(self) -> Counts:
        """Node counts by label and relationship counts by type."""
        return self.store.counts()

    def cypher(self, query: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run a Cypher query with parameters; rows as a DataFrame.

        A query that may write (:func:`graphfusion.store.cypher.check_read_only` refuses it)
        makes the engine rebuild its recommender, QA index and defect analysis from the store
        on their next use, so that they serve what it wrote.
        """
        if not isinstance(query, str):
            raise ValidationError("query must be a string")
        try:
            return self.store.query_df(query, params)
        finally:
            if may_write(query):
                self._forget()

    def _forget(self) -> None:
        """Drop what the engine built from the store (the recommender, the QA index and its
        weights, the defect analysis): rebuilt from the store on next use."""
        self._qa, self._recommender, self._defects = None, None, None
        self._qa_weights = None

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
