"""`haima search`: the chunks of a collection closest to a text."""

from __future__ import annotations

from pathlib import Path

import click

from haima.cli._common import (
    cli_errors,
    get_collection,
    json_option,
    mode_option,
    open_client,
    parse_json_option,
    print_json,
    print_table,
    resolve_mode,
    snippet,
    store_options,
)


@click.command()
@click.argument("text")
@click.option("-c", "--collection", "name", required=True, help="The collection to search.")
@click.option("-k", "--k", "k", default=5, show_default=True, help="How many results.")
@click.option("--where", default=None, metavar="JSON", help="Metadata filter: '{\"page\": 2}'.")
@click.option(
    "--where-document", default=None, metavar="JSON", help='Text filter: \'{"$contains": "x"}\'.'
)
@mode_option
@store_options
@json_option
def search(
    text: str,
    name: str,
    k: int,
    where: str | None,
    where_document: str | None,
    mode: str | None,
    path: Path | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Search a collection for TEXT (no LLM involved)."""
    from haima.rag import retrieve

    where_filter = parse_json_option(where, "--where")
    document_filter = parse_json_option(where_document, "--where-document")
    with cli_errors(), open_client(path, url, create=False) as client:
        collection = get_collection(client, name)
        found = retrieve(
            collection,
            text,
            k,
            where=where_filter,
            where_document=document_filter,
            mode=resolve_mode(collection, mode),
        )
    if as_json:
        print_json([s.to_dict() for s in found])
        return
    if not found:
        click.echo("no results")
        return
    rows = [
        (
            s.number,
            "" if s.distance is None else f"{s.distance:.4f}",
            s.label(),
            snippet(s.document),
        )
        for s in found
    ]
    print_table(("#", "distance", "source", "text"), rows, title=f"{name}: {text}")
