"""Sequential next-item models (``task = "sequential"``): SASRec, BERT4Rec, NOVA-BERT."""
