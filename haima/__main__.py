"""`python -m haima ...` is the `haima` command."""

from haima.cli import main

main()
