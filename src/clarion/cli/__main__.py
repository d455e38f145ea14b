"""`python -m clarion.cli` runs the `clarion` command."""

from clarion.cli.main import main

main()
