"""Knowledge-graph completion models (task ``kg``): one import line per model file."""
# ruff: noqa: F401  (imported to register the models)

import fusionrec.models.kg.complex
import fusionrec.models.kg.distmult
import fusionrec.models.kg.mkgformer
import fusionrec.models.kg.rotate
import fusionrec.models.kg.transe
