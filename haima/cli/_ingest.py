"""`haima ingest`: bring a collection up to date with a folder."""

from __future__ import annotations

from pathlib import Path

import click

from haima.cli._common import cli_errors, json_option, open_client, print_json, store_options
from haima.cli._embedding_option import chosen_spec, embedding_options, open_collection


@click.command()
@click.argument("folder", type=click.Path(exists=True, path_type=Path))
@click.option("-c", "--collection", "name", required=True, help="The collection to fill.")
@click.option(
    "--glob",
    "globs",
    multiple=True,
    metavar="PATTERN",
    help="Files to take, relative to FOLDER (repeatable; default: every supported file).",
)
@click.option("--chunk-size", default=500, show_default=True, help="Characters per chunk.")
@click.option("--chunk-overlap", default=50, show_default=True, help="Characters shared.")
@click.option("--text-field", default=None, help="The CSV column / JSONL field with the text.")
@click.option("--encoding", default=None, help="Force a text encoding (default: detected).")
@click.option("--keep-missing", is_flag=True, help="Keep chunks of files no longer in the folder.")
@click.option(
    "--keyword/--no-keyword",
    default=None,
    help="The collection's keyword (BM25) index, for hybrid and keyword search. Default: "
    "on for a new collection; an existing one keeps its setting unless a flag is given.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@embedding_options
@store_options
@json_option
def ingest(
    folder: Path,
    name: str,
    globs: tuple[str, ...],
    chunk_size: int,
    chunk_overlap: int,
    text_field: str | None,
    encoding: str | None,
    keep_missing: bool,
    keyword: bool | None,
    no_progress: bool,
    embedding: str | None,
    embedding_url: str | None,
    embedding_key_env: str | None,
    reembed: bool,
    path: Path | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Load, split, embed and store the files of FOLDER (or one file) in a collection.

    Runs again only redo what changed: new and edited files are (re)embedded, deleted
    files' chunks removed, unchanged files skipped. The collection keeps the model it
    was made with (--embedding chooses it for a new one); search, ask and the server
    use that model for queries.
    """
    from haima.rag import ingest as run_ingest

    with cli_errors(), open_client(path, url) as client:
        spec = chosen_spec(embedding, embedding_url, embedding_key_env)
        collection = open_collection(client, name, spec, keyword, reembed)
        has_keyword = bool((collection.configuration.get("keyword") or {}).get("enabled"))
        if keyword is not None and keyword != has_keyword:  # an existing collection
            collection.modify(configuration={"keyword": {"enabled": keyword}})
        report = run_ingest(
            collection,
            folder,
            glob=list(globs) or None,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            text_field=text_field,
            encoding=encoding,
            delete_missing=not keep_missing,
            progress=False if no_progress or as_json else None,
        )
        total = collection.count()
    if as_json:
        print_json({**report.to_dict(), "count": total})
        return
    click.echo(f"{name}: {report.summary()}; {total} chunks in the collection")
    for failure in report.failed:
        click.echo(f"failed: {failure}", err=True)
    for warning in report.warnings[:20]:
        click.echo(f"warning: {warning}", err=True)
    if len(report.warnings) > 20:
        click.echo(
            f"... and {len(report.warnings) - 20} more warnings (--json lists all)", err=True
        )
