"""Built-in data sets, registered in ``DATASETS`` (``fusionrec list datasets``).

Each module of this package registers its data sets when imported; every module is imported here, so
adding a data set is adding a module."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
