"""The data layer: schema, readers, splits, the canonical folder and built-in data sets."""

from fusionrec.data import readers  # noqa: F401  (fills READERS, the data.format choices)
from fusionrec.data.config import DataConfig, SplitConfig
from fusionrec.data.dataset import Dataset, DatasetSchema, Modality
from fusionrec.data.prepare import load_dataset, prepare
from fusionrec.data.store import load_dataset_dir, save_dataset

__all__ = [
    "DataConfig",
    "SplitConfig",
    "Dataset",
    "DatasetSchema",
    "Modality",
    "load_dataset",
    "prepare",
    "load_dataset_dir",
    "save_dataset",
]
