"""The ``news`` task family: impressions in the MIND format, per-impression AUC/MRR/nDCG (docs/news.md)."""

from fusionrec.tasks.news.task import NewsTask, NewsTaskConfig

__all__ = ["NewsTask", "NewsTaskConfig"]
