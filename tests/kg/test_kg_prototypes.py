"""Visual prototypes of WordNet synsets: class vectors for ImageNet classes, means of the classes below
for their hypernyms, from training triples only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusionrec.data.dataset import build_kg_dataset
from fusionrec.features.class_prototypes import synset_prototypes

# dog (class 0) and cat (class 1) are ImageNet classes; both are carnivores, carnivores are animals;
# "fish" is a class whose hypernym edge (fish -> animal) is a TEST triple, so it must not reach animal.
TRIPLES = pd.DataFrame(
    [
        ("00000001", "_hypernym", "00000010", "train"),  # dog below carnivore
        ("00000010", "_hyponym", "00000002", "train"),  # carnivore above cat (the inverse relation)
        ("00000010", "_hypernym", "00000020", "train"),  # carnivore below animal
        ("00000003", "_hypernym", "00000020", "test"),  # fish below animal: held out
        ("00000001", "_similar", "00000002", "valid"),
        ("00000030", "_similar", "00000002", "train"),  # a synset with nothing visual
    ],
    columns=["head", "relation", "tail", "split"],
)
WNIDS = ["n00000001", "n00000002", "n00000003"]
VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]], dtype=np.float32)


def test_classes_keep_their_vector_and_hypernyms_average_the_classes_below():
    dataset = build_kg_dataset("toy-wordnet", TRIPLES)
    modality, coverage = synset_prototypes(dataset, WNIDS, VECTORS)
    row = {str(e): i for i, e in enumerate(dataset.item_ids)}
    np.testing.assert_allclose(modality.values[row["00000001"]], [1.0, 0.0])
    np.testing.assert_allclose(modality.values[row["00000010"]], [0.5, 0.5])  # mean of dog and cat
    np.testing.assert_allclose(modality.values[row["00000020"]], [0.5, 0.5])  # not pulled by the test-only fish
    assert not modality.mask[row["00000030"]] and not modality.values[row["00000030"]].any()
    assert (coverage.imagenet_classes, coverage.ancestors, coverage.hypernym_edges) == (3, 2, 3)
    assert modality.mask.sum() == coverage.covered == 5


@pytest.mark.skipif(
    not __import__("importlib").util.find_spec("efficientnet_lite_pytorch"), reason="EfficientNet-Lite0 not installed"
)
def test_class_vectors_are_the_packaged_classifier():
    from fusionrec.features.class_prototypes import efficientnet_class_vectors

    vectors = efficientnet_class_vectors()
    assert vectors.shape == (1000, 1280) and np.isfinite(vectors).all()
