"""A visual modality for WordNet entities: an ImageNet classifier's class vectors as visual prototypes.

ImageNet's 1,000 classes are WordNet noun synsets, and an image classifier's last layer holds one
weight vector per class: the direction in its visual feature space that an image of that class
points to. So a WordNet synset that is an ImageNet class gets that vector (EfficientNet-Lite0's
1280-d class weights, the packaged weights), and a synset above such classes in the hypernym
hierarchy gets the mean of the vectors of the classes below it. Other entities have no visual
modality (mask False).

- The class order (ImageNet's 1,000 WordNet ids, the classifier's output order) comes from the
  ``timm`` wheel's ``timm/data/_info/imagenet_synsets.txt``, fetched like the other registry data
  (:mod:`fusionrec.data.wheels`: downloaded, never installed; ``FUSIONREC_TIMM_WHEEL`` names a copy).
- The hierarchy is read from the **training** triples only (``_hypernym``/``_instance_hypernym``:
  head below tail; ``_hyponym``/``_instance_hyponym``: head above tail), so no valid or test triple
  shapes a feature.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

import numpy as np

from fusionrec.data.dataset import TRAIN, Dataset, Modality
from fusionrec.data.wheels import Wheel
from fusionrec.errors import DataError

TIMM_WHEEL = Wheel("timm==1.0.31", "FUSIONREC_TIMM_WHEEL")
SYNSETS_MEMBER = "timm/data/_info/imagenet_synsets.txt"
UPWARD = ("_hypernym", "_instance_hypernym")  # (head, tail): tail is above head
DOWNWARD = ("_hyponym", "_instance_hyponym")  # (head, tail): head is above tail


@dataclass
class PrototypeCoverage:
    entities: int
    imagenet_classes: int  # entities that are ImageNet classes
    ancestors: int  # entities above at least one of them
    hypernym_edges: int  # training edges the hierarchy was read from

    @property
    def covered(self) -> int:
        return self.imagenet_classes + self.ancestors


def imagenet_wordnet_ids() -> list[str]:
    """The 1,000 ImageNet classes as WordNet ids (``n01440764``...), in classifier output order."""
    folder = TIMM_WHEEL.extract("imagenet-synsets", {SYNSETS_MEMBER: "imagenet_synsets.txt"})
    ids = (folder / "imagenet_synsets.txt").read_text().split()
    if len(ids) != 1000:
        raise DataError(
            f"{folder / 'imagenet_synsets.txt'}: {len(ids)} ids, expected 1000; delete the folder to fetch it again"
        )
    return ids


def efficientnet_class_vectors() -> np.ndarray:
    """EfficientNet-Lite0's ImageNet class weights, (1000, 1280) float32, in classifier output order."""
    from fusionrec.features.vision import EfficientNetLiteEncoder

    model = EfficientNetLiteEncoder(device="cpu").model
    return model._fc.weight.detach().cpu().numpy().astype(np.float32)


def _parents(dataset: Dataset) -> tuple[dict[int, set[int]], int]:
    """Entity index -> indices directly above it, from the training triples."""
    if dataset.kg is None or "split" not in dataset.kg:
        raise DataError(f"{dataset.name}: not a knowledge-graph completion data set (no split triples)")
    index = {str(e): i for i, e in enumerate(dataset.item_ids)}
    train = dataset.kg[dataset.kg["split"].to_numpy() == TRAIN]
    parents: dict[int, set[int]] = defaultdict(set)
    edges = 0
    for relation, below_is_head in [(r, True) for r in UPWARD] + [(r, False) for r in DOWNWARD]:
        rows = train[train["relation"].astype(str) == relation]
        for head, tail in zip(rows["head"].astype(str), rows["tail"].astype(str), strict=True):
            below, above = (head, tail) if below_is_head else (tail, head)
            if below in index and above in index:
                parents[index[below]].add(index[above])
                edges += 1
    return parents, edges


def synset_prototypes(
    dataset: Dataset, wordnet_ids: list[str], class_vectors: np.ndarray
) -> tuple[Modality, PrototypeCoverage]:
    """The ``visual`` modality of a WordNet KG: (E, D) class vectors, hypernyms the mean of the classes
    below them; entity ids are WordNet offsets (``00260881``), matched to ``n00260881``."""
    offsets = {wnid.lstrip("n"): row for row, wnid in enumerate(wordnet_ids)}
    classes = {i: offsets[str(e)] for i, e in enumerate(dataset.item_ids) if str(e) in offsets}
    parents, edges = _parents(dataset)
    dim = class_vectors.shape[1]
    values = np.zeros((dataset.num_items, dim), dtype=np.float64)
    counts = np.zeros(dataset.num_items, dtype=np.int64)
    for entity, row in classes.items():  # each class adds itself to every synset above it, once
        seen, queue = {entity}, deque(parents.get(entity, ()))
        while queue:
            above = queue.popleft()
            if above in seen:
                continue
            seen.add(above)
            values[above] += class_vectors[row]
            counts[above] += 1
            queue.extend(parents.get(above, ()))
    ancestors = (counts > 0) & ~np.isin(np.arange(dataset.num_items), list(classes))
    values[ancestors] /= counts[ancestors, None]
    for entity, row in classes.items():  # a class is its own vector, not the mean of those below it
        values[entity] = class_vectors[row]
    mask = np.zeros(dataset.num_items, dtype=bool)
    mask[list(classes)] = True
    mask |= ancestors
    coverage = PrototypeCoverage(dataset.num_items, len(classes), int(ancestors.sum()), edges)
    source = "efficientnet-lite0 ImageNet class vectors (timm 1.0.31 synset order); hypernyms: mean over classes below"
    return Modality(values.astype(np.float32), mask, kind="dense", source=source), coverage
