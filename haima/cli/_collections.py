"""`haima collections`: list a store's collections."""

from __future__ import annotations

import json
from pathlib import Path

import click

from haima.cli._common import cli_errors, json_option, open_client, store_options


@click.command()
@store_options
@json_option
def collections(path: Path | None, url: str | None, as_json: bool) -> None:
    """List the collections of a store with their sizes and settings."""
    with cli_errors(), open_client(path, url, create=False) as client:
        rows = [
            {
                "name": c.name,
                "count": c.count(),
                "dimension": c.dimension,
                "index": c.configuration["index"]["type"],
                "metric": c.configuration["metric"],
            }
            for c in client.list_collections()
        ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['name']}\t{row['count']} records\tdim {row['dimension']}"
            f"\t{row['index']}/{row['metric']}"
        )
