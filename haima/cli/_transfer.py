"""`haima export`, `haima import` and `haima migrate`: moving collections between local
stores, Haima and Chroma servers, and files (haima.transfer)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from haima.cli._common import cli_errors

F = TypeVar("F", bound=Callable[..., Any])


def _shared(command: F) -> F:
    command = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")(
        command
    )
    command = click.option("--no-progress", is_flag=True, help="No progress bar.")(command)
    command = click.option(
        "--restart",
        is_flag=True,
        help="Start over instead of resuming an interrupted run (replaces what it wrote).",
    )(command)
    command = click.option(
        "--batch-size", default=1_000, show_default=True, type=click.IntRange(min=1)
    )(command)
    command = click.option(
        "-c",
        "--collection",
        "collections",
        multiple=True,
        metavar="NAME",
        help="Only this collection (repeatable; default: all).",
    )(command)
    return command


def _print(report: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    for c in report.collections:
        resumed = ""
        if c.resumed_at:
            resumed = (
                ", already there" if c.resumed_at == c.count else f", resumed at {c.resumed_at:,}"
            )
        click.echo(f"{c.name}: {c.count:,} records verified (checksum {c.checksum}){resumed}")


@click.command("export")
@click.argument("source")
@click.argument("folder")
@click.option("--format", "file_format", type=click.Choice(["jsonl", "parquet"]), default="jsonl")
@click.option(
    "--rows-per-part",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows per Parquet file.",
)
@_shared
def export_command(
    source: str,
    folder: str,
    file_format: str,
    rows_per_part: int,
    collections: tuple[str, ...],
    batch_size: int,
    restart: bool,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Write the collections of SOURCE (a store's folder, or a Haima or Chroma server's
    URL) to FOLDER as JSONL or Parquet, with a manifest; run again to resume."""
    from haima.transfer import export

    with cli_errors():
        report = export(
            source,
            folder,
            format=file_format,
            collections=collections or None,
            batch_size=batch_size,
            rows_per_part=rows_per_part,
            restart=restart,
            progress=False if no_progress or as_json else None,
        )
    _print(report, as_json)


@click.command("import")
@click.argument("folder")
@click.argument("destination")
@_shared
def import_command(
    folder: str,
    destination: str,
    collections: tuple[str, ...],
    batch_size: int,
    restart: bool,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Load an export FOLDER into DESTINATION (a folder or a server's URL)."""
    from haima.transfer import import_

    with cli_errors():
        report = import_(
            folder,
            destination,
            collections=collections or None,
            batch_size=batch_size,
            restart=restart,
            progress=False if no_progress or as_json else None,
        )
    _print(report, as_json)


@click.command("migrate")
@click.option("--from", "source", required=True, help="A store's folder, or a server URL.")
@click.option("--to", "destination", required=True, help="A store's folder, or a server URL.")
@_shared
def migrate_command(
    source: str,
    destination: str,
    collections: tuple[str, ...],
    batch_size: int,
    restart: bool,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Copy collections from one store or server to another, verified; run again to
    resume an interrupted copy."""
    from haima.transfer import migrate

    with cli_errors():
        report = migrate(
            source,
            destination,
            collections=collections or None,
            batch_size=batch_size,
            restart=restart,
            progress=False if no_progress or as_json else None,
        )
    _print(report, as_json)
