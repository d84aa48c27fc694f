"""A seeded synthetic knowledge graph with a planted text and visual signal, for tests and scale runs.

Every entity belongs to one of ``num_clusters`` clusters. Relation ``r`` links an entity of cluster
``c`` to entities of cluster ``(c + r + 1) mod num_clusters`` only, so a tail is predictable from the
head's cluster and the relation, but *which* entity of the cluster is not: it is drawn with a
Zipf-like popularity skew inside the cluster. The cluster is planted in both modalities:

- ``text_tokens``: token vectors ``(E, text_tokens, text_dim)``, the cluster's word vector plus noise at every
  token (``items.text`` spells the cluster's word), missing for ``missing_rate`` of the entities;
- ``visual``: patch vectors ``(E, visual_tokens, visual_dim)``, the cluster's prototype plus noise,
  missing for another ``missing_rate`` share.

``items.cluster`` keeps the truth. Triples are drawn ``triples_per_entity`` per head, repeats dropped,
and split at random into train / valid / test by ``ratios`` (seeded); entities that occur only in
valid or test are kept (their modalities are the only way to place them). With ``modalities=false``
no features are made (scale runs: 10^6 entities of token features would take gigabytes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset, build_kg_dataset
from fusionrec.registry import DATASETS


class SyntheticKGOptions(StrictConfig):
    num_entities: int = Field(1000, gt=1)
    num_relations: int = Field(4, gt=0)
    num_clusters: int = Field(10, gt=1)
    triples_per_entity: int = Field(4, gt=0)
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    modalities: bool = True
    text_tokens: int = Field(4, gt=0)
    text_dim: int = Field(16, gt=0)
    visual_tokens: int = Field(4, gt=0)
    visual_dim: int = Field(16, gt=0)
    noise: float = Field(0.5, ge=0)
    missing_rate: float = Field(0.1, ge=0, lt=1)
    seed: int = 0


@DATASETS.register(
    "synthetic-kg",
    config=SyntheticKGOptions,
    task="kg",
    description="seeded knowledge graph: relations link clusters, planted in noisy text and visual tokens",
)
def load_synthetic_kg(options: SyntheticKGOptions) -> Dataset:
    o = options
    rng = np.random.default_rng(o.seed)
    cluster = rng.integers(0, o.num_clusters, o.num_entities)
    popularity = 1.0 / (1.0 + rng.permutation(o.num_entities))  # Zipf-like skew inside each cluster
    members = [np.flatnonzero(cluster == c) for c in range(o.num_clusters)]
    heads = np.repeat(np.arange(o.num_entities), o.triples_per_entity)
    relations = rng.integers(0, o.num_relations, len(heads))
    target_cluster = (cluster[heads] + relations + 1) % o.num_clusters
    tails = np.empty(len(heads), dtype=np.int64)
    for c in range(o.num_clusters):  # one vectorised draw per cluster (clusters are few)
        rows = np.flatnonzero(target_cluster == c)
        if len(members[c]) and len(rows):
            weights = popularity[members[c]] / popularity[members[c]].sum()
            tails[rows] = rng.choice(members[c], size=len(rows), p=weights)
        elif len(rows):
            tails[rows] = heads[rows]
    frame = pd.DataFrame({"head": heads, "relation": relations, "tail": tails}).drop_duplicates(ignore_index=True)
    cut = np.cumsum(o.ratios)[:2] * len(frame)
    position = rng.permutation(len(frame))
    frame["split"] = np.where(position < cut[0], 0, np.where(position < cut[1], 1, 2)).astype(np.int8)
    entity_ids = [f"e{i}" for i in range(o.num_entities)]
    frame = frame.assign(
        head=np.asarray(entity_ids, dtype=object)[frame["head"]],
        tail=np.asarray(entity_ids, dtype=object)[frame["tail"]],
        relation=[f"r{r}" for r in frame["relation"]],
    )
    words = [f"kind{c}" for c in range(o.num_clusters)]
    text = pd.DataFrame(
        {
            "entity": entity_ids,
            "title": [f"e{i} ({words[c]})" for i, c in enumerate(cluster)],
            "text": [f"an entity of kind {words[c]}" for c in cluster],
        }
    )
    modalities = {}
    if o.modalities:
        for name, tokens, dim in (
            ("text_tokens", o.text_tokens, o.text_dim),
            ("visual", o.visual_tokens, o.visual_dim),
        ):
            prototypes = rng.standard_normal((o.num_clusters, dim)).astype(np.float32)
            values = prototypes[cluster][:, None, :] + o.noise * rng.standard_normal((o.num_entities, tokens, dim))
            present = rng.random(o.num_entities) >= o.missing_rate
            values[~present] = 0.0
            source = f"planted cluster signal (noise {o.noise})"
            modalities[name] = (
                np.asarray(entity_ids),
                values.astype(np.float32),
                {"kind": "regions", "source": source, "present": present},
            )
    dataset = build_kg_dataset(
        "synthetic-kg",
        frame,
        entities=entity_ids,
        relations=[f"r{r}" for r in range(o.num_relations)],
        entity_text=text,
        modalities=modalities,
        meta={"source": "fusionrec synthetic-kg generator", "options": o.model_dump(mode="json")},
    )
    assert dataset.items is not None
    dataset.items["cluster"] = cluster
    return dataset
