"""Recall report: which companies are linked to several recalls, and which hazards cluster.

Works on a store that holds ``Recall`` nodes naming ``Supplier`` nodes in their roles
(``(Recall)-[:NAMES {roles}]->(Supplier)``), as the built-in ``cpsc_recalls`` mapping loads the
US CPSC recall export::

    engine.load("cpsc_recalls", recalls="recalls.csv")
    report = engine.recalls()
    report.companies.head(10)       # firms named by 2 or more recalls, with roles and hazards
    report.clusters                 # per hazard type: recalls, firms, repeat firms, lift

**Hazard types.** CPSC hazard texts name their hazards ("posing fire and burn hazards"), so
a recall's hazard types are the ones whose words (:data:`HAZARD_TYPES`) appear in its hazard
text, or in its title when it has none, in order of appearance; the first is its main type.
Generic words (:data:`GENERIC_HAZARD_WORDS`: "injury") name a type only where the text names
no other ("burn injuries" are a burn hazard). A text that names no hazard is compared
(all-MiniLM-L6-v2, cosine) with short descriptions of each type and gets the best match, or
``other`` below :data:`MIN_SIMILARITY`. A recall without any text is ``unknown``.

**Clusters.** A hazard type *clusters* on firms when the same firms are named again and again
for it. For each type the report gives the number of recalls, of those that name any firm
(``with_firms``; many recalls, older ones above all, name none) and of firms, the firms named
by two or more recalls of that type (``repeat_firms``) and, of the type's recalls that name a
firm, the share that name a repeat firm (``repeat_share``; a recall that names no firm counts
in neither part). ``expected_share`` is that share when the recalls' hazard types are
shuffled among all the recalls (:data:`PERMUTATIONS` seeded draws), and ``lift`` the ratio:
above 1, the type concentrates on a few firms beyond what their recall counts explain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from graphfusion.errors import ValidationError
from graphfusion.features.text import has_visible_character
from graphfusion.graph import unit_rows
from graphfusion.plots import new_figure, plot_text, save_figure
from graphfusion.store.base import BaseStore
from graphfusion.values import count_arg

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "GENERIC_HAZARD_WORDS",
    "HAZARD_TYPES",
    "MIN_SIMILARITY",
    "PERMUTATIONS",
    "RecallReport",
    "hazard_types",
    "recall_report",
]

#: Hazard types: the words that name them in a hazard text (English and the Spanish of
#: CPSC's translated headings), and descriptions for texts that name none.
HAZARD_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "fire": (
        r"\bfires?\b|ignit|flame|smok(?!er)|incendio",
        ("can overheat and catch fire", "the wiring can short, melt and ignite"),
    ),
    "burn": (
        r"\bburn(?!er)|scald|quemadura",
        ("hot liquid can spill or spray onto the user", "the surface gets too hot to touch"),
    ),
    "electric shock": (
        r"shock|electrocut|descarga",
        ("the unit can leak current or become electrified", "exposed live wires"),
    ),
    "laceration": (
        r"lacerat|\bcuts?\b|cortadura",
        ("the blade or glass can break and cut the user", "sharp edges are exposed"),
    ),
    "choking or ingestion": (
        r"chok|ingest|swallow|asfixia",
        ("small parts can detach and be swallowed", "pieces can end up in the food"),
    ),
    "poisoning": (
        r"poison|carbon monoxide|toxic|glycol|intoxica",
        ("contains a toxic chemical", "carbon monoxide can build up indoors"),
    ),
    "tip-over or entrapment": (
        r"tip[- ]?over|entrap|suffocat|tipping",
        ("the appliance can tip over onto a child", "a child can become trapped inside"),
    ),
    "impact or injury": (
        r"strik|impact",
        ("parts can break apart and strike consumers", "the lid can burst off under pressure"),
    ),
}
#: Words that name a hazard type only in a text that names no other type: "injury" alone is
#: the harm of an impact, but "burn injuries" are a burn hazard's and "injury or death from
#: carbon monoxide poisoning" a poisoning hazard's.
GENERIC_HAZARD_WORDS: dict[str, str] = {"impact or injury": r"injur|lesi[oó]n"}
#: Below this best cosine similarity a text that names no hazard gets the type ``other``.
MIN_SIMILARITY = 0.3
#: Random draws for the ``lift`` estimate of :attr:`RecallReport.clusters`.
PERMUTATIONS = 200
#: The types of recalls whose texts name no hazard (``unknown``: no text; ``other``: like
#: none of the types): not hazard types of their own.
_NO_TYPE = ("unknown", "other")


def hazard_types(texts: list[str | None], encoder: Any | None = None) -> pd.DataFrame:
    """The hazard types of each text (see the module docstring).

    Args:
        texts: Hazard descriptions; empty or missing ones get ``unknown``.
        encoder: Something with ``encode(list[str]) -> array``, used only for texts that
            name no hazard; the offline MiniLM when None.

    Returns:
        One row per text: ``hazards`` (every type named, in order of appearance),
        ``hazard_type`` (the first), ``method`` (``named``, ``similar`` or ``none``) and
        ``similarity`` (the best cosine for ``similar``, else NaN).

    Raises:
        ValidationError: ``texts`` is one string, not a list of them.
    """
    if isinstance(texts, str | bytes) or not isinstance(texts, Iterable):
        raise ValidationError(f"texts must be a list of hazard texts, got {texts!r:.80}")
    texts = list(texts)
    rows: list[dict[str, Any]] = []
    unnamed: list[int] = []
    unnamed_texts: list[str] = []
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not has_visible_character(text):
            rows.append({"hazards": ["unknown"], "method": "none"})
            continue
        found = _named_hazards(text, {name: p for name, (p, _) in HAZARD_TYPES.items()})
        if not found:
            found = _named_hazards(text, GENERIC_HAZARD_WORDS)
        rows.append({"hazards": [name for _, name in sorted(found)], "method": "named"})
        if not found:
            unnamed.append(i)
            unnamed_texts.append(text)
    if unnamed:
        if encoder is None:
            from graphfusion.features.text import TextEncoder

            encoder = TextEncoder()
        names = [name for name, (_, phrases) in HAZARD_TYPES.items() for _ in phrases]
        phrases = [p for _, group in HAZARD_TYPES.values() for p in group]
        ref = unit_rows(np.asarray(encoder.encode(phrases), dtype=np.float32))
        vecs = unit_rows(np.asarray(encoder.encode(unnamed_texts), np.float32))
        score = vecs @ ref.T
        best = score.argmax(axis=1)
        top = score[np.arange(len(unnamed)), best]
        for row, b, sim in zip(unnamed, best, top, strict=True):
            kind = names[b] if sim >= MIN_SIMILARITY else "other"
            rows[row] = {"hazards": [kind], "method": "similar", "similarity": float(sim)}
    frame = pd.DataFrame(rows, columns=["hazards", "method", "similarity"])
    frame.insert(1, "hazard_type", frame["hazards"].str[0])
    return frame


def _named_hazards(text: str, patterns: dict[str, str]) -> list[tuple[int, str]]:
    """(Position of its first word, type) of each type in ``patterns`` that ``text`` names."""
    found = []
    for name, pattern in patterns.items():
        match = re.search(pattern, text, flags=re.IGNORECASE)
        if match:
            found.append((match.start(), name))
    return found


@dataclass
class RecallReport:
    """What a store's recalls say about firms and hazards.

    Attributes:
        recalls: One row per recall: ``recall_id``, ``title``, ``hazard``, ``date``,
            ``hazard_type`` (main), ``hazards`` (all), ``method``, ``similarity`` and
            ``firms`` (supplier ids it names).
        links: One row per (recall, firm, role): ``recall_id``, ``supplier_id``, ``name``,
            ``role``.
        companies: One row per firm named by at least ``min_recalls`` recalls, most recalls
            first: ``supplier_id``, ``name``, ``roles``, ``recalls``, ``recall_ids``,
            ``hazard_types`` (type to count of recalls), ``main_hazard`` (the most common
            type, a tie going to the type of its latest recall; ``unknown`` or ``other`` only
            when its recalls name no hazard), ``first`` and ``last`` date.
        clusters: One row per hazard type, most recalls first: ``hazard_type``, ``recalls``,
            ``with_firms`` (those that name a firm), ``firms``, ``repeat_firms`` (named by 2+
            recalls of this type, with counts), ``repeat_share`` (of the ``with_firms``
            recalls), ``expected_share`` and ``lift`` (see the module docstring).
    """

    recalls: pd.DataFrame
    links: pd.DataFrame
    companies: pd.DataFrame
    clusters: pd.DataFrame

    def firm_hazards(self, top: int = 15) -> pd.DataFrame:
        """Recall counts of the ``top`` firms (rows) by hazard type (columns).

        Raises:
            ValidationError: ``top`` is not an integer in 1..1,000,000.
        """
        top = count_arg("top", top, 1_000_000)
        firms = self.companies["supplier_id"].head(top).tolist()
        pairs = self.links[["recall_id", "supplier_id"]].drop_duplicates()
        pairs = pairs[pairs["supplier_id"].isin(firms)]
        kinds = self.recalls[["recall_id", "hazards"]].explode("hazards")
        pairs = pairs.merge(kinds, on="recall_id")
        table = pd.crosstab(pairs["supplier_id"], pairs["hazards"]).rename_axis(
            columns="hazard_type"
        )
        return table.reindex(firms).fillna(0).astype(int)

    def plot(self, path: str | Path, top: int = 15) -> Path:
        """Heat map of the ``top`` firms' recalls by hazard type (PNG)."""
        table = self.firm_hazards(top)
        if table.empty:
            raise ValidationError("no firm is named by several recalls: nothing to plot")
        names = dict(zip(self.companies["supplier_id"], self.companies["name"], strict=True))
        fig, ax = new_figure(1.0 + 0.7 * table.shape[1], 1.2 + 0.35 * len(table))
        ax.imshow(table.to_numpy(), cmap="Reds", aspect="auto")
        ax.set_xticks(range(table.shape[1]), table.columns, rotation=40, ha="right")
        ax.set_yticks(range(len(table)), [plot_text(names.get(i) or i) for i in table.index])
        for (row, col), value in np.ndenumerate(table.to_numpy()):
            if value:
                ax.text(col, row, str(value), ha="center", va="center", fontsize=8)
        ax.set_title("recalls per firm and hazard type")
        fig.tight_layout()
        return save_figure(fig, path)

    def graph(self, top: int = 12) -> nx.Graph:
        """The recall graph of the ``top`` firms: each firm linked to the recalls that name it.

        Nodes are ``("firm", supplier_id)`` and ``("recall", recall_id)``, so that a firm and
        a recall with one key (stores keyed by numbers) stay two nodes; a firm's ``kind`` is
        ``firm`` and its ``label`` its name, a recall's ``kind`` its main hazard type.

        Raises:
            ValidationError: ``top`` is not an integer in 1..1,000,000.
        """
        import networkx as nx

        top = count_arg("top", top, 1_000_000)
        firms = set(self.companies["supplier_id"].head(top))
        kinds = dict(zip(self.recalls["recall_id"], self.recalls["hazard_type"], strict=True))
        graph = nx.Graph()
        for row in self.links[self.links["supplier_id"].isin(firms)].itertuples():
            firm, recall = ("firm", row.supplier_id), ("recall", row.recall_id)
            graph.add_node(firm, kind="firm", label=plot_text(row.name or row.supplier_id))
            graph.add_node(recall, kind=kinds.get(row.recall_id, "unknown"), label="")
            graph.add_edge(firm, recall)
        return graph

    def plot_graph(self, path: str | Path, top: int = 12) -> Path:
        """The recall graph of the ``top`` firms (PNG, :meth:`graph`): firms linked to the
        recalls that name them, recalls coloured by hazard type."""
        import networkx as nx
        from matplotlib import colormaps

        graph = self.graph(top)
        if not graph:
            raise ValidationError("no firm is named by several recalls: nothing to plot")
        cmap = colormaps["tab10"]
        kinds = sorted(set(self.recalls["hazard_type"]))
        palette = {kind: cmap(i % 10) for i, kind in enumerate(kinds)}
        fig, ax = new_figure(9, 7)
        pos = nx.spring_layout(graph, seed=0, k=0.35)
        firm_nodes = [n for n, d in graph.nodes(data=True) if d["kind"] == "firm"]
        nx.draw_networkx_edges(graph, pos, ax=ax, alpha=0.3)
        nx.draw_networkx_nodes(graph, pos, nodelist=firm_nodes, node_color="black",
                               node_size=60, ax=ax)  # fmt: skip
        nx.draw_networkx_labels(graph, pos, {n: graph.nodes[n]["label"] for n in firm_nodes},
                                font_size=7, ax=ax, verticalalignment="bottom")  # fmt: skip
        for kind, colour in palette.items():
            nodes = [n for n, d in graph.nodes(data=True) if d["kind"] == kind]
            if nodes:
                nx.draw_networkx_nodes(graph, pos, nodelist=nodes, node_color=[colour],
                                       node_size=25, ax=ax, label=kind)  # fmt: skip
        ax.legend(fontsize=7, loc="lower left", title="recall hazard", title_fontsize=7)
        ax.set_title(f"recalls of the {len(firm_nodes)} firms with the most recalls")
        ax.axis("off")
        return save_figure(fig, path)


def recall_report(
    store: BaseStore, *, min_recalls: int = 2, encoder: Any | None = None, seed: int = 0
) -> RecallReport:
    """Firms linked to several recalls and the hazard types that cluster on firms.

    Args:
        store: A store with ``Recall`` nodes (e.g. loaded with the ``cpsc_recalls`` mapping).
        min_recalls: Firms named by fewer recalls are left out of ``companies``.
        encoder: Text encoder for the hazard types; the offline MiniLM when None.
        seed: Seed of the permutation estimate of ``lift`` (an integer, 0 or more).

    Raises:
        ValidationError: Bad arguments, or the store holds no recalls.
        SchemaError: The schema has no ``Recall`` or ``Supplier`` nodes or no ``NAMES``.
    """
    min_recalls = count_arg("min_recalls", min_recalls, 1_000_000)
    seed = count_arg("seed", seed, 2**63 - 1, low=0)
    store.schema.require("the recalls report", ("Recall", "Supplier"), ("NAMES",))
    recalls = store.query_df(
        "MATCH (r:Recall) RETURN r.id AS recall_id, r.title AS title, r.hazard AS hazard, "
        "r.ts AS date ORDER BY recall_id"
    )
    if recalls.empty:
        raise ValidationError("the store holds no recalls; load some first (cpsc_recalls)")
    named = store.query_df(
        "MATCH (r:Recall)-[n:NAMES]->(s:Supplier) RETURN r.id AS recall_id, "
        "s.id AS supplier_id, s.name AS name, n.roles AS role ORDER BY recall_id, supplier_id"
    )
    if named.empty:  # recalls that name no firm: no columns come back
        named = pd.DataFrame(columns=["recall_id", "supplier_id", "name", "role"], dtype=object)
    # One row per role (a recall may name a firm as importer and retailer).
    links = named.explode("role", ignore_index=True)
    texts = recalls["hazard"].where(
        recalls["hazard"].fillna("").str.strip() != "", recalls["title"]
    )
    kinds = hazard_types(texts.tolist(), encoder)
    recalls = pd.concat([recalls.reset_index(drop=True), kinds], axis=1)
    firms = links.groupby("recall_id")["supplier_id"].agg(lambda s: sorted(set(s)))
    recalls["firms"] = (
        recalls["recall_id"].map(firms).apply(lambda v: v if isinstance(v, list) else [])
    )
    return RecallReport(
        recalls=recalls,
        links=links,
        companies=_companies(recalls, links, min_recalls),
        clusters=_clusters(recalls, links, seed),
    )


def _companies(recalls: pd.DataFrame, links: pd.DataFrame, min_recalls: int) -> pd.DataFrame:
    columns = ["supplier_id", "name", "roles", "recalls", "recall_ids", "hazard_types",
               "main_hazard", "first", "last"]  # fmt: skip
    if links.empty:
        return pd.DataFrame(columns=columns)
    joined = links.merge(recalls[["recall_id", "hazards", "date"]], on="recall_id")
    rows = []
    for firm, group in joined.groupby("supplier_id"):
        once = group.drop_duplicates("recall_id")
        if len(once) < min_recalls:
            continue
        dates = pd.to_datetime(once["date"], errors="coerce")
        counts = _latest_first_counts(once["hazards"], dates, once["recall_id"])
        named = counts.drop(list(_NO_TYPE), errors="ignore")
        rows.append({
            "supplier_id": firm,
            "name": group["name"].dropna().iloc[0] if group["name"].notna().any() else None,
            "roles": sorted(set(group["role"].dropna())),
            "recalls": len(once),
            "recall_ids": sorted(once["recall_id"]),
            "hazard_types": {str(k): int(v) for k, v in counts.items()},
            "main_hazard": str(named.index[0] if len(named) else counts.index[0]),
            "first": dates.min(),
            "last": dates.max(),
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["recalls", "supplier_id"], ascending=[False, True], ignore_index=True)


def _latest_first_counts(hazards: pd.Series, dates: pd.Series, ids: pd.Series) -> pd.Series:
    """How many of a firm's recalls name each hazard type, most first; a tie goes to the
    type named in its latest recall (by date, then recall id; within a recall, the type
    named first)."""
    order = pd.DataFrame({"hazards": hazards, "date": dates, "id": ids}).sort_values(
        ["date", "id"], ascending=False, na_position="last", kind="stable"
    )
    kinds = order["hazards"].explode()
    counts = kinds.value_counts().reindex(list(dict.fromkeys(kinds)))
    return counts.iloc[np.argsort(-counts.to_numpy(), kind="stable")]


def _repeat_share(pairs: pd.DataFrame, chosen_recalls: np.ndarray) -> float:
    """Share of the chosen recalls that name a firm (those that name none are not counted)
    that name a firm named by 2+ of the chosen recalls; 0 when none names a firm."""
    chosen = pairs[chosen_recalls[pairs["row"].to_numpy()]]
    if chosen.empty:
        return 0.0
    per_firm = chosen.groupby("supplier_id")["row"].nunique()
    repeat = per_firm.index[per_firm >= 2]
    hit = chosen.loc[chosen["supplier_id"].isin(repeat), "row"].nunique()
    return hit / chosen["row"].nunique()


def _clusters(recalls: pd.DataFrame, links: pd.DataFrame, seed: int) -> pd.DataFrame:
    columns = ["hazard_type", "recalls", "with_firms", "firms", "repeat_firms", "repeat_share",
               "expected_share", "lift"]  # fmt: skip
    pairs = links[["recall_id", "supplier_id"]].drop_duplicates()
    pairs = pairs.assign(row=pd.Index(recalls["recall_id"]).get_indexer(pairs["recall_id"]))
    kinds = recalls["hazards"].explode()
    counts = kinds[~kinds.isin(_NO_TYPE)].value_counts()
    rng = np.random.default_rng(seed)
    rows = []
    for kind, count in counts.items():
        has = recalls["hazards"].apply(lambda h, k=kind: k in h).to_numpy()
        chosen = pairs[has[pairs["row"].to_numpy()]]
        per_firm = chosen.groupby("supplier_id")["row"].nunique()
        repeat = per_firm[per_firm >= 2].sort_values(ascending=False, kind="stable")
        observed = _repeat_share(pairs, has)
        # the same recalls' types, shuffled among all recalls
        expected = float(np.mean([_repeat_share(pairs, rng.permutation(has))
                                  for _ in range(PERMUTATIONS)]))  # fmt: skip
        rows.append({
            "hazard_type": kind,
            "recalls": int(count),
            "with_firms": int(chosen["row"].nunique()),
            "firms": int(chosen["supplier_id"].nunique()),
            "repeat_firms": {str(k): int(v) for k, v in repeat.items()},
            "repeat_share": round(observed, 3),
            "expected_share": round(expected, 3),
            "lift": round(observed / expected, 2) if expected > 0 else float("nan"),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
