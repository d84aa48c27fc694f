"""Top-K recommenders from implicit feedback."""
