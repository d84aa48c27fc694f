"""Serving a trained run: the HTTP service (``fusionrec serve``), its ANN index and the explorer page."""
