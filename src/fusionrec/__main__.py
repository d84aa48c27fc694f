"""``python -m fusionrec ...``: the command line (the form ``torchrun -m fusionrec`` and scripts use)."""

from fusionrec.cli.main import main

main()
