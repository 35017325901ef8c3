"""`haima collections`: list a store's collections."""

from __future__ import annotations

import json
from pathlib import Path

import click

import haima


@click.command()
@click.option("--path", default="./haima_data", show_default=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def collections(path: Path, as_json: bool) -> None:
    """List the collections of a store with their sizes and settings."""
    with haima.PersistentClient(path) as client:
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
