"""Outfit models (task ``outfit``): one import line per model file."""
# ruff: noqa: F401  (imported to register the models)

import fusionrec.models.outfit.bilstm_outfit
import fusionrec.models.outfit.fom
import fusionrec.models.outfit.nor
import fusionrec.models.outfit.outfit_pop
import fusionrec.models.outfit.outfit_random
import fusionrec.models.outfit.pairwise_compat
import fusionrec.models.outfit.pog
