"""`haima ask`: answer a question from a collection with an OpenAI-compatible chat model."""

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
    resolve_mode,
    store_options,
)


@click.command()
@click.argument("question")
@click.option("-c", "--collection", "name", required=True, help="The collection to answer from.")
@click.option("-k", "--k", "k", default=5, show_default=True, help="Chunks given to the model.")
@click.option("--where", default=None, metavar="JSON", help="Metadata filter for retrieval.")
@mode_option
@click.option(
    "--base-url",
    default=None,
    envvar="HAIMA_LLM_BASE_URL",
    help="OpenAI-compatible API, e.g. http://localhost:11434/v1 [env HAIMA_LLM_BASE_URL].",
)
@click.option("--model", default=None, envvar="HAIMA_LLM_MODEL", help="[env HAIMA_LLM_MODEL]")
@click.option(
    "--api-key",
    default=None,
    envvar="HAIMA_LLM_API_KEY",
    help="[env HAIMA_LLM_API_KEY] (not needed by most local servers).",
)
@click.option("--no-stream", is_flag=True, help="Print the answer when complete.")
@store_options
@json_option
def ask(
    question: str,
    name: str,
    k: int,
    where: str | None,
    mode: str | None,
    base_url: str | None,
    model: str | None,
    api_key: str | None,
    no_stream: bool,
    path: Path | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Answer QUESTION from the chunks of a collection, citing them as [1], [2]..."""
    from haima.rag import ChatModel
    from haima.rag import ask as run_ask

    where_filter = parse_json_option(where, "--where")
    streaming = not (no_stream or as_json)
    with cli_errors():
        llm = ChatModel(base_url=base_url, model=model, api_key=api_key)
        with open_client(path, url, create=False) as client:
            collection = get_collection(client, name)
            answer = run_ask(
                question,
                collection,
                llm,
                k=k,
                where=where_filter,
                mode=resolve_mode(collection, mode),
                stream=(lambda token: click.echo(token, nl=False)) if streaming else None,
            )
    if as_json:
        print_json(answer.to_dict())
        return
    if streaming:
        click.echo()
    else:
        click.echo(answer.text)
    if answer.sources:
        click.echo("\nSources:")
        for source in answer.sources:
            click.echo(f"  [{source.number}] {source.label()}  ({source.id})")
