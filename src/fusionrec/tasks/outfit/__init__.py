"""Outfits (task ``outfit``): compatibility (FITB, AUC), personalised generation, top-bottom matching with comments."""
# ruff: noqa: F401  (imported to register the task)

import fusionrec.tasks.outfit.task
