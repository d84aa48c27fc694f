"""A toy task family, ``toy_click``: pointwise click prediction (label 1 for an observed pair, 0 for a
sampled one), AUC/logloss on held-out pairs, and one model, a logistic matrix factorisation.

It lives entirely in this folder and registers itself on import (``TASKS`` and ``MODELS``): the proof
that a family is added without touching the library. ``docs/extending.md`` walks through it."""

from toy_click import model, task  # noqa: F401  (registers the family and its model)
