"""Top-K recommenders from implicit feedback (task ``topk``): one import line per model file."""
# ruff: noqa: F401  (imported to register the models)

import fusionrec.models.topk.bpr
import fusionrec.models.topk.ease
import fusionrec.models.topk.hcgcn
import fusionrec.models.topk.lightgcn
import fusionrec.models.topk.mario
import fusionrec.models.topk.mcptr
import fusionrec.models.topk.mgat
import fusionrec.models.topk.mostpop
import fusionrec.models.topk.random_scores
import fusionrec.models.topk.saers
import fusionrec.models.topk.uvcan
import fusionrec.models.topk.vbpr
import fusionrec.models.topk.vecf
