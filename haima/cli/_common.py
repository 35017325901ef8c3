"""What the commands share: opening the store (a folder or a server), finding a
collection, turning Haima's errors into clean CLI errors, and printing tables or JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import click

import haima
from haima.backends.milvus.uri import is_milvus_target

DEFAULT_PATH = Path("./haima_data")

F = TypeVar("F", bound=Callable[..., Any])


def store_options(command: F) -> F:
    """--path and --url, the two ways to name a store."""
    command = click.option(
        "--url",
        default=None,
        metavar="URL",
        help="A Haima server (http://host:8000) or a Milvus store (milvus://host:19530, "
        "milvus+https://host with HAIMA_MILVUS_TOKEN, milvus-lite:///path/store.db) instead "
        "of a local folder.",
    )(command)
    command = click.option(
        "--path",
        default=None,
        type=click.Path(path_type=Path),
        help="The store's folder (default ./haima_data).",
    )(command)
    return command


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


class NoStoreError(click.ClickException):
    """A command that only reads was pointed at a folder without a store."""


def open_client(path: Path | None, url: str | None, *, create: bool = True) -> haima.Client:
    """The client for `--path` (default ./haima_data) or `--url`. With create=False a
    missing folder is an error instead of a new empty store."""
    if url:
        if path is not None:
            raise click.UsageError("give --path or --url, not both")
        if is_milvus_target(url):
            token = os.environ.get("HAIMA_MILVUS_TOKEN") or None
            return haima.connect(url, token=token) if token else haima.connect(url)
        http_client = getattr(haima, "HttpClient", None)
        if http_client is None:
            raise click.UsageError(
                "--url needs haima.HttpClient, which this version of Haima does not have; "
                "use --path with a local store"
            )
        return cast(haima.Client, http_client.from_url(url))
    folder = path if path is not None else DEFAULT_PATH
    try:
        return haima.PersistentClient(folder, create=create)
    except haima.NotFoundError:
        raise NoStoreError(
            f"no Haima store at {folder} (give --path, or create one with `haima ingest`)"
        ) from None


def get_collection(client: haima.Client, name: str) -> haima.Collection:
    try:
        return client.get_collection(name)
    except haima.NotFoundError:
        known = ", ".join(repr(c.name) for c in client.list_collections()) or "none"
        raise click.ClickException(
            f"no collection {name!r} in this store (it has: {known})"
        ) from None


#: `--mode` of search and ask; without it, hybrid where the collection has a keyword index.
MODES = ("vector", "keyword", "hybrid")


def mode_option(command: F) -> F:
    return click.option(
        "--mode",
        type=click.Choice(MODES),
        default=None,
        help="vector, keyword or hybrid. Default: hybrid on collections with a keyword "
        "index (what `haima ingest` creates), else vector.",
    )(command)


def resolve_mode(collection: haima.Collection, mode: str | None) -> str:
    """The search mode: the one asked for, else hybrid when the collection has a keyword
    index and vector (with a note on stderr saying how to get hybrid) when it has none."""
    if mode is not None:
        return mode
    if (collection.configuration.get("keyword") or {}).get("enabled"):
        return "hybrid"
    click.echo(
        f"note: collection {collection.name!r} has no keyword index, so this is a vector "
        f"search; `haima collections modify {collection.name} --keyword` enables hybrid "
        "search (keyword + vector)",
        err=True,
    )
    return "vector"


@contextmanager
def cli_errors() -> Iterator[None]:
    """Haima's errors (bad filter, unreachable model...) as one clean line, no traceback."""
    try:
        yield
    except (haima.HaimaError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc


def parse_json_option(value: str | None, name: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=name) from exc


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None
) -> None:
    """A rich table on stdout (plain, without colours, when it is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console(soft_wrap=False).print(table)


def snippet(text: str | None, limit: int = 160) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
