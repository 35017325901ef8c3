"""`haima collections`: list a store's collections; `haima collections modify`: change
one's keyword index and hybrid fusion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from haima.cli._common import cli_errors, get_collection, json_option, open_client, store_options


def _keyword_summary(configuration: dict[str, Any]) -> str:
    keyword = configuration.get("keyword") or {}
    if not keyword.get("enabled"):
        return "no keyword index"
    if keyword.get("fusion") == "rrf":
        return "keyword on, fusion rrf"
    return f"keyword on, fusion convex {keyword.get('weight')}"


@click.group(invoke_without_command=True)
@store_options
@json_option
@click.pass_context
def collections(ctx: click.Context, path: Path | None, url: str | None, as_json: bool) -> None:
    """List the collections of a store with their sizes and settings."""
    if ctx.invoked_subcommand is not None:
        return
    with cli_errors(), open_client(path, url, create=False) as client:
        rows = [
            {
                "name": c.name,
                "count": c.count(),
                "dimension": c.dimension,
                "index": c.configuration["index"]["type"],
                "metric": c.configuration["metric"],
                "keyword": c.configuration.get("keyword"),
            }
            for c in client.list_collections()
        ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['name']}\t{row['count']} records\tdim {row['dimension']}"
            f"\t{row['index']}/{row['metric']}\t{_keyword_summary(row)}"
        )


@collections.command()
@click.argument("name")
@click.option(
    "--keyword/--no-keyword",
    default=None,
    help="Build the keyword (BM25) index from the stored documents, or drop it.",
)
@click.option(
    "--fusion",
    type=click.Choice(["convex", "rrf"]),
    default=None,
    help="How hybrid search fuses keyword and vector rankings.",
)
@click.option(
    "--weight",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="The keyword side's share in convex fusion (0: vectors only, 1: keywords only).",
)
@store_options
@json_option
def modify(
    name: str,
    keyword: bool | None,
    fusion: str | None,
    weight: float | None,
    path: Path | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Change collection NAME's keyword index or hybrid fusion (other settings stay)."""
    change: dict[str, Any] = {}
    if keyword is not None:
        change["enabled"] = keyword
    if fusion is not None:
        change["fusion"] = fusion
    if weight is not None:
        change["weight"] = weight
    if not change:
        raise click.UsageError(
            "nothing to change: give --keyword/--no-keyword, --fusion or --weight"
        )
    with cli_errors(), open_client(path, url, create=False) as client:
        collection = get_collection(client, name)
        collection.modify(configuration={"keyword": change})
        keyword_config = collection.configuration.get("keyword") or {}
    if as_json:
        click.echo(json.dumps({"name": name, "keyword": keyword_config}, indent=2))
        return
    click.echo(f"{name}: {_keyword_summary({'keyword': keyword_config})}")
