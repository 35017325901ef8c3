"""The `haima` command: a thin layer over the library.

Each command lives in its own module and registers itself on `main` here, so that a
command's dependencies (server, RAG, evaluation) load only when it runs.
"""

from __future__ import annotations

import click

import haima
from haima.cli._ask import ask
from haima.cli._collections import collections
from haima.cli._eval import eval_command
from haima.cli._info import info
from haima.cli._ingest import ingest
from haima.cli._search import search
from haima.cli._server import run
from haima.cli._transfer import export_command, import_command, migrate_command


@click.group()
@click.version_option(haima.__version__, prog_name="haima")
def main() -> None:
    """Haima (海马): a vector database for LLM applications."""


main.add_command(collections)
main.add_command(ingest)
main.add_command(search)
main.add_command(ask)
main.add_command(info)
main.add_command(run)
main.add_command(eval_command)
main.add_command(export_command)
main.add_command(import_command)
main.add_command(migrate_command)
