"""Click-through-rate models (the ``ctr`` task): one model per file, one import line each."""

from fusionrec.models.ctr import autoint, cmbf, dcn_v2, deepfm, deepfm_content, fm, lr

__all__ = ["autoint", "cmbf", "dcn_v2", "deepfm", "deepfm_content", "fm", "lr"]
