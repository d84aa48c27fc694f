"""News recommendation models (the ``news`` task): one model per file, one import line each."""

from fusionrec.models.news import mm_rec, nrms, vlsnr

__all__ = ["mm_rec", "nrms", "vlsnr"]
