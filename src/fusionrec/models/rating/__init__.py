"""Review-based rating prediction (task ``rating``): one import line per model file."""
# ruff: noqa: F401  (imported to register the models)

import fusionrec.models.rating.biased_mf
import fusionrec.models.rating.deepconn
import fusionrec.models.rating.global_mean
import fusionrec.models.rating.narre
import fusionrec.models.rating.nrpa
