"""Built-in data sets, registered in ``DATASETS`` (``fusionrec list datasets``)."""

from fusionrec.data.builtin import amazon_fashion, ml100k, movielens_small, synthetic

__all__ = ["amazon_fashion", "ml100k", "movielens_small", "synthetic"]
