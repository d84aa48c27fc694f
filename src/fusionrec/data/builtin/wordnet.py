"""WordNet knowledge graphs from the shared data folder: ``wn18rr`` and ``wn18-mkgformer``.

- ``wn18rr``: WN18RR (Dettmers et al., 2018) as staged from hwwang55/PathCon: tab-separated triples
  with ``entities.dict`` / ``relations.dict`` (86,835 / 3,034 / 3,134 triples, 40,943 entities). Its
  entities are WN18's, so when ``shared/data/wn18-mkgformer`` is there too, each entity gets WN18's
  lemma and gloss as text (``entity_text``).
- ``wn18-mkgformer``: WN18 as MKGformer ships it (OpenKE ids + ``entity2text.txt``; 141,442 / 5,000 /
  5,000 triples), text for all 40,943 entities.

Entity text for MKGformer's text stream comes from the features layer, like any item text:
``fusionrec features extract wn18rr --regions --max-tokens 12`` adds ``text_tokens`` (MiniLM-L6 token
states of each description, ``(E, 12, 384)``); descriptions are side information of entities, not
triples, so this reads no held-out fact.

No visual modality: mapping WordNet synsets to ImageNet classes needs the ImageNet class-to-synset
(wnid) list, which neither the EfficientNet-Lite0 package nor anything else installed here ships;
``synthetic-kg`` carries the visual path instead.
"""

from __future__ import annotations

from pydantic import Field

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset
from fusionrec.data.paths import require_shared, shared_dir
from fusionrec.data.readers.openke import read_openke_folder
from fusionrec.data.readers.triples import read_entity_text, read_triples_folder
from fusionrec.registry import DATASETS


class WordNetOptions(StrictConfig):
    entity_text: bool = Field(True, description="wn18rr: lemma and gloss from wn18-mkgformer when it is there")


@DATASETS.register(
    "wn18rr",
    config=WordNetOptions,
    task="kg",
    description="WN18RR (40,943 entities, 11 relations) from shared/data/wn18rr; WN18 text when available",
)
def load_wn18rr(options: WordNetOptions) -> Dataset:
    folder = require_shared("wn18rr", "WN18RR: train/valid/test.txt + entities.dict, relations.dict (PathCon layout)")
    dataset = read_triples_folder(folder, name="wn18rr")
    text_folder = shared_dir("data/wn18-mkgformer")
    if options.entity_text and text_folder is not None:
        text = read_entity_text(text_folder / "data" / "wn18-mkgformer" / "entity2text.txt")
        assert text is not None and dataset.items is not None
        rows = dataset.items.set_index("item").index.get_indexer(text["entity"])
        keep = rows >= 0
        dataset.items.loc[rows[keep], "title"] = text["title"].to_numpy()[keep]
        dataset.items.loc[rows[keep], "text"] = text["text"].to_numpy()[keep]
        dataset.meta["entities_without_text"] = int(len(dataset.items) - keep.sum())
        dataset.meta["text_source"] = "wn18-mkgformer entity2text.txt"
    dataset.meta.update(license="MIT (PathCon); WordNet licence")
    return dataset


@DATASETS.register(
    "wn18-mkgformer",
    config=WordNetOptions,
    task="kg",
    description="WN18 with lemma + gloss text for all 40,943 entities (MKGformer's folder) from shared/data",
)
def load_wn18_mkgformer(options: WordNetOptions) -> Dataset:
    folder = require_shared("wn18-mkgformer", "WN18 in MKGformer's layout: *2id.txt + entity2text.txt")
    dataset = read_openke_folder(folder, name="wn18-mkgformer")
    dataset.meta.update(license="MIT (zjunlp/MKGformer); WordNet licence")
    return dataset
