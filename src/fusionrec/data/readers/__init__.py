"""Readers turn files in a user's format into a :class:`~fusionrec.data.dataset.Dataset`."""

from fusionrec.data.readers.mmrec import read_mmrec
from fusionrec.data.readers.recbole import read_recbole
from fusionrec.data.readers.table import read_table, read_table_file

__all__ = ["read_mmrec", "read_recbole", "read_table", "read_table_file"]
