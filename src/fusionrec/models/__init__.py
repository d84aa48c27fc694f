"""Models, one family per subpackage; importing this package registers every model in ``MODELS``.

Each family's ``__init__`` has one explicit import line per model file; families are found here by
folder, so a new family (``models/<family>/``) needs no line outside its folder."""

from fusionrec.registry import import_subpackages

FAMILIES = import_subpackages(__name__, __path__)
