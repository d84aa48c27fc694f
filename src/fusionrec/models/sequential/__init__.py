"""Sequential next-item models (task ``sequential``): one import line per model file."""

from fusionrec.models.sequential import bert4rec, marank, mml, nova_bert, sasrec  # noqa: F401
