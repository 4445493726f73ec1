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

from graphfusion.defaults import EPOCHS
from graphfusion.defects import AT_RISK_TOP, DefectAnalysis, analyse
from graphfusion.errors import ValidationError
from graphfusion.features.embed import (
    EmbedError,
    EmbedReport,
    cache_for,
    embed,
    modalities,
    write_vectors,
)
from graphfusion.features.text import TextEncoder
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

    The engine keeps what it builds from the store (the recommender, the QA index, the defect
    analysis) and builds it again when a call of its own changes the store. Closed (or left
    by ``with``), every call that needs the store raises
    :class:`~graphfusion.errors.StoreError`, also those it had answered before.

    Args:
        store: Folder of the embedded store (default ``$GRAPHFUSION_STORE`` or
            ``./.graphfusion``; ``~`` is the home folder, a relative folder is in the
            working folder), or an already open store (which the engine then closes).
        schema: The graph schema of a store folder; the built-in e-commerce schema when None.
        read_only: Open the store folder read-only.

    Raises:
        ValidationError: ``store`` is not a folder path or store, or an empty one;
            ``read_only`` is not a bool; ``schema`` or ``read_only`` given with an open store
            that has another schema or is writable (open it so instead).
        StoreError: The folder cannot be made a store (see
            :class:`~graphfusion.store.EmbeddedStore`).
        StoreLockedError: The store is open for writing elsewhere (another process, or
            another engine or store in this one: close that one first).
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | BaseStore | None = None,
        *,
        schema: Schema | None = None,
        read_only: bool = False,
    ) -> None:
        if not isinstance(read_only, bool):
            raise ValidationError(f"read_only must be True or False, got {read_only!r}")
        if isinstance(store, BaseStore):
            if schema is not None and schema != store.schema:
                raise ValidationError(
                    "schema is for a store folder; this store is open with its own schema "
                    f"({store.schema.name}): open the store with the schema instead"
                )
            if read_only and not getattr(store, "read_only", False):
                raise ValidationError(
                    "read_only is for a store folder; this store is open for writing: open "
                    "the store read-only instead"
                )
            self.store: BaseStore = store
        else:
            # the store reads the folder: ~, $GRAPHFUSION_STORE, a blank or non-path argument
            self.store = EmbeddedStore(store, schema=schema, read_only=read_only)
        self._recommender: Recommender | None = None
        self._qa: QAIndex | None = None
        self._qa_weights: dict[str, np.ndarray] | None = None  # kept over new products
        self._qa_encoder: TextEncoder | None = None  # kept over rebuilds: MiniLM loads once
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
        """An engine on a Neo4j server (see :class:`~graphfusion.store.Neo4jStore`).

        Args:
            uri: Server URI (default ``$NEO4J_URI``).
            user: User name (default ``$NEO4J_USERNAME``, else ``neo4j``).
            password: Password (default ``$NEO4J_PASSWORD``).
            database: Database (default ``$NEO4J_DATABASE``, else ``neo4j``).
            schema: The graph schema; the built-in e-commerce schema when None.
            read_only: Send every statement in a read transaction and create no schema.

        Returns:
            The engine; close it (or use ``with``) to close the driver.

        Raises:
            StoreError: No URI given or set, or the server cannot be reached or refuses the
                credentials.
        """
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
        mapping: str | Path | LoaderMapping | Mapping[str, Any],
        sources: Mapping[str, Any] | None = None,
        *,
        report: str | Path | None = None,
        batch_size: int | None = None,
        progress: bool = False,
        **named_sources: Any,
    ) -> LoadReport:
        """Load sources through a loader mapping (see :func:`graphfusion.ingest.load`).

        Sources can be given as a mapping or as keyword arguments:
        ``engine.load("amazon_qa", qa="qa_Appliances.json.gz")``. What the engine built
        before (recommender, QA index, defect analysis) is built again on next use, with the
        new data.

        Args:
            mapping: A built-in mapping name (``synthetic``, ``amazon_qa``...), a mapping
                file, a parsed mapping, or a mapping as plain data (a dict).
            sources: Source name -> path (a file or folder) or DataFrame.
            report: Where to write the rejected rows (``.csv`` or ``.jsonl``); by default,
                when rows were rejected, ``reports/`` in the store folder.
            batch_size: Rows per write (the store's default when None).
            progress: Show progress bars.
            **named_sources: More sources, by name.

        Returns:
            What was loaded and rejected (``report.summary()`` says it in a line).

        Raises:
            MappingError: The mapping is wrong or a source is missing.
            ValidationError: Bad arguments, a ``report`` path that cannot be written, or a
                store opened read-only.
        """
        self.store.check_writable("load")
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
        prune_cache: bool = False,
    ) -> EmbedReport:
        """Make the review passages (:func:`graphfusion.qa.write_passages`), then compute text,
        image and behaviour vectors where missing or out of date.

        See :func:`graphfusion.features.embed`. A second run recomputes nothing.

        Args:
            only: Some of ``text``, ``image``, ``behaviour``; all when None.
            text_encoder: A :class:`~graphfusion.features.TextEncoder` (the offline MiniLM
                when None).
            image_encoder: An :class:`~graphfusion.features.ImageEncoder` (the default when
                None).
            report: Where to write the nodes that got no vector (JSON lines); by default,
                when there are any, ``reports/`` in the store folder.
            progress: Show progress bars.
            prune_cache: Afterwards, drop the cached vectors that no node's vector was made
                from (content since changed, nodes since deleted) and shrink the cache file.

        Returns:
            What was encoded, taken from the cache or up to date, and the errors.

        Raises:
            ValidationError: An unknown modality, or an encoder whose dimension does not fit.
        """
        self.store.check_writable("embed")
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
            prune_cache=prune_cache,
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
        self.store.check_writable("add_vectors")
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
        """The ``k`` products most similar to a product by one modality.

        Args:
            product_id: The product's key.
            modality: ``text``, ``image``, ``behaviour`` or ``fused``.
            k: How many (1 to 1,000).

        Returns:
            Columns ``id``, ``title``, ``score`` (cosine similarity), highest first; the
            product itself left out.

        Raises:
            ValidationError: A bad modality or ``k``.
            NotFoundError: Unknown product.
            NotReadyError: The product has no vector of ``modality`` yet (run :meth:`embed`
                or :meth:`train`), no photo (``image``), or a vector with no direction (all
                zeros) that no cosine similarity can rank by.
        """
        return similar(self.store, product_id, modality, k)

    def train(
        self,
        model: str = "lightgcn",
        *,
        epochs: int = EPOCHS,
        progress: bool = False,
        **settings: Any,
    ) -> TrainResult:
        """Train a recommendation model and write ``fused_vec`` and ``rec_vec`` back (see
        :func:`graphfusion.train.train`); :meth:`recommend` then serves it.

        The behaviour vectors are brought up to date first (``embed(only="behaviour")``):
        live interactions and new products move them, and training reads them from the
        store.

        Args:
            model: ``fusion``, ``lightgcn``, ``mf`` or ``popularity`` (see
                :class:`~graphfusion.train.TrainConfig`).
            epochs: At most this many epochs (training stops early on validation Recall@20).
            progress: Show a progress bar.
            **settings: Other :class:`~graphfusion.train.TrainConfig` fields (``lr``,
                ``batch_size``, ``patience``, ``seed``...).

        Returns:
            The history, test metrics and file paths (``result.summary()`` in a line).

        Raises:
            ValidationError: An unknown or bad setting (among them an interaction type the
                schema lacks or that does not link User to Product), a store opened
                read-only, or too few interactions to train on.
            SchemaError: The schema lacks what training reads or writes (``User``,
                ``Product``, their ``id`` and ``fused_vec``, or the default interaction types).
            KeyboardInterrupt: A Ctrl-C that aborts. The first Ctrl-C while the epochs run
                stops them instead and keeps the best epoch so far (``result.interrupted``;
                see :func:`graphfusion.train.train`).
        """
        try:
            config = TrainConfig(model=model, epochs=epochs, **settings)
        except TypeError as exc:
            raise ValidationError(f"unknown training setting: {exc}") from None
        config.check(self.store.schema)  # before the behaviour vectors are written
        self.store.check_writable("training")
        embed(self.store, only="behaviour")
        result = train(self.store, config, progress=progress)
        self._recommender = None  # serve the new model
        return result

    # ------------------------------------------------------------------ recommendation
    def recommender(self) -> Recommender:
        """The serving state of the last trained model (built on first use, again after
        :meth:`train` or a change to the store); see :mod:`graphfusion.recommend`.

        Returns:
            The recommender.

        Raises:
            NotReadyError: No trained model in the store, or one that no longer fits it.
        """
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
        """Top-``k`` products for a user with their reasons (see
        :meth:`graphfusion.recommend.Recommender.recommend`).

        Args:
            user_id: A stored user's key.
            k: How many (1 to 1,000).
            category: Only products of this category (id or name; a parent category includes
                its subcategories).
            brand: Only products of this brand (id or name).
            max_price: Only products with a known price at most this.
            exclude_seen: Leave out the products the user interacted with.
            diversity: 0 (pure relevance) to 1: re-rank by maximal marginal relevance.
            explain: Attach the reasons (``False``: faster).

        Returns:
            Columns ``product_id``, ``title``, ``score``, ``category``, ``brand``,
            ``price``, ``reasons``, best first; ``attrs["method"]`` says how the scores were
            made.

        Raises:
            ValidationError: A bad argument.
            NotFoundError: Unknown user.
            NotReadyError: No trained model (run :meth:`train`).
        """
        return self.recommender().recommend(
            user_id, k, category=category, brand=brand, max_price=max_price,
            exclude_seen=exclude_seen, diversity=diversity, explain=explain,
        )  # fmt: skip

    def explain(self, user_id: str, product_id: str) -> list[Reason]:
        """The graph evidence linking a user to a product, strongest first.

        Args:
            user_id: A stored user's key.
            product_id: A stored product's key.

        Returns:
            At most three reasons, each with its text, strength and path of graph nodes.

        Raises:
            NotFoundError: Unknown user or product.
            NotReadyError: No trained model (run :meth:`train`).
        """
        return self.recommender().explain(user_id, product_id)

    def add_interactions(self, frame: pd.DataFrame) -> LoadReport:
        """Store new interactions and update the served vectors without retraining (see
        :meth:`graphfusion.recommend.Recommender.add_interactions`).

        Args:
            frame: Columns ``user_id``, ``product_id``, optional ``type`` (VIEWED, PURCHASED
                or FAVORITED; PURCHASED when missing), ``ts`` (ISO 8601) and ``weight``.

        Returns:
            The load report: rows written, and every bad row with its reason.

        Raises:
            ValidationError: Not a DataFrame, a required column is missing, or a column it
                does not read (``timestamp`` for ``ts``: it would be lost without a word).
            NotReadyError: No trained model (run :meth:`train`).
        """
        self.store.check_writable("add_interactions")
        try:
            return self.recommender().add_interactions(frame)
        except Exception:
            self._recommender = None  # it may be half updated: rebuilt from the store
            raise

    def add_products(self, frame: pd.DataFrame) -> LoadReport:
        """Store new products and give them fused vectors through the fusion model's
        content path, without retraining (see
        :meth:`graphfusion.recommend.Recommender.add_products`).

        Args:
            frame: Columns ``id`` and any of ``title``, ``description``, ``price``,
                ``currency``, ``created_at``, ``category_id``, ``brand_id``, ``supplier_id``,
                ``batch_id``, ``image`` (a file path).

        Returns:
            The load report: rows written, and every bad row with its reason.

        Raises:
            ValidationError: Not a DataFrame, no ``id`` column, a column it does not read
                (``category`` for ``category_id``), or a served model other than the fusion
                model.
            NotReadyError: No trained model (run :meth:`train`).
        """
        self.store.check_writable("add_products")
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
        :meth:`graphfusion.qa.QAIndex.ask`; the index is built on first use).

        Args:
            question: The question text.
            product_id: The product page it was asked on, if any (it comes first).
            k: How many of each (1 to 100).
            method: ``fusion`` (the default), ``bm25``, ``dense`` or ``graph``.

        Returns:
            ``products``, ``answers`` and ``passages``, each ranked with scores and evidence.

        Raises:
            ValidationError: An empty, too long or non-text question, an unknown product, or
                a bad ``k`` or ``method``.
            NotReadyError: The store has no text vectors yet (run :meth:`embed`).
        """
        return self.qa_index().ask(question, product_id, k, method)

    def qa_index(self) -> QAIndex:
        """The QA index of the store (built on first use, again after a change to the
        store).

        Returns:
            The index :meth:`ask` uses.
        """
        if self._qa is None:
            if self._qa_encoder is None:
                self._qa_encoder = TextEncoder()
            self._qa = QAIndex(
                self.store, encoder=self._qa_encoder, fusion_weights=self._qa_weights
            )
        return self._qa

    # ------------------------------------------------------------------ defects
    def defect_analysis(self) -> DefectAnalysis:
        """Evidence and propagated risk for every product, batch and supplier (see
        :mod:`graphfusion.defects`; computed on first use, again after a change to the store).

        Returns:
            The analysis :meth:`defects` and :meth:`defect_evidence` read (with its plots).

        Raises:
            NotReadyError: The store has no products.
        """
        if self._defects is None:
            self._defects = analyse(self.store)
        return self._defects

    def defects(
        self, level: str = "supplier", top: int = 20, at_risk: int = AT_RISK_TOP
    ) -> pd.DataFrame:
        """The riskiest suppliers, batches or products with their main evidence and the
        products at risk that share them (see
        :meth:`graphfusion.defects.DefectAnalysis.ranking`).

        Args:
            level: ``supplier``, ``batch`` or ``product``.
            top: How many.
            at_risk: At most this many products at risk per supplier or batch (the
                riskiest).

        Returns:
            One row per node, riskiest first: its key, counts, ``risk``, ``evidence`` and
            (suppliers and batches) ``at_risk_products`` and ``at_risk_count`` (how many
            there are in all).

        Raises:
            ValidationError: Unknown level, or bad ``top`` or ``at_risk``.
            NotReadyError: The store has no products.
        """
        return self.defect_analysis().ranking(level, top, at_risk)

    def defect_evidence(self, node_key: str, level: str | None = None) -> list[dict[str, Any]]:
        """Evidence paths of a supplier, batch or product, strongest first (see
        :meth:`graphfusion.defects.DefectAnalysis.evidence_paths`).

        Args:
            node_key: The supplier's, batch's or product's key.
            level: ``supplier``, ``batch`` or ``product``; None: the one level that has the
                key.

        Returns:
            ``path`` (``(label, key)`` nodes from the node to the evidence), ``kind``,
            ``score`` and ``text`` of each piece of evidence; empty when there is none.

        Raises:
            ValidationError: Unknown level, or a key of several levels and no ``level``.
            NotFoundError: No such supplier, batch or product.
        """
        return self.defect_analysis().evidence_paths(node_key, level)

    def recalls(self, min_recalls: int = 2) -> RecallReport:
        """Firms named by several recalls and the hazard types that cluster on firms (see
        :mod:`graphfusion.recalls`; load recalls first, e.g. ``cpsc_recalls``).

        Args:
            min_recalls: Firms named by fewer recalls are left out of ``companies``.

        Returns:
            The recalls with their hazard types, the firms they name, the firms named by
            ``min_recalls`` or more, and the hazard-type clusters.

        Raises:
            ValidationError: A bad ``min_recalls``, or the store holds no recalls.
        """
        return recall_report(self.store, min_recalls=min_recalls)

    def stats(self) -> Counts:
        """Node counts by label and relationship counts by type.

        Returns:
            ``nodes`` (label -> count) and ``relationships`` (type -> count).
        """
        return self.store.counts()

    def cypher(self, query: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run a Cypher query with parameters; rows as a DataFrame.

        A query that may write (:func:`graphfusion.store.cypher.check_read_only` refuses it)
        makes the engine rebuild its recommender, QA index and defect analysis from the store
        on their next use, so that they serve what it wrote.

        Args:
            query: One Cypher statement; every value as a ``$parameter``.
            params: The parameters' values.

        Returns:
            One row per result row, one column per returned name.

        Raises:
            ValidationError: ``query`` is not a string, or bad parameters.
            QueryError: The store refused or failed to run the query.
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
        """Close the store and drop what was built from it (idempotent): every call that
        needs the store raises :class:`~graphfusion.errors.StoreError` after it."""
        self._forget()
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
