"""`--embedding` for `haima ingest`: which model embeds a collection, stored in its
configuration so that `search`, `ask` and the server use the same one; and `--reembed`,
which moves a collection to another model."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import click

import haima
from haima._progress import progress_bar
from haima.client import DEFAULT
from haima.embeddings import EmbeddingFunction, from_spec, model_identity, spec_of
from haima.embeddings.base import EmbeddingSpec
from haima.embeddings.names import spec_for

F = TypeVar("F", bound=Callable[..., Any])

#: Records re-embedded per batch by --reembed.
REEMBED_BATCH = 256


def embedding_options(command: F) -> F:
    command = click.option(
        "--reembed",
        is_flag=True,
        help="With --embedding on an existing collection of another model: embed every "
        "record again with the new model.",
    )(command)
    command = click.option(
        "--embedding-key-env",
        metavar="VAR",
        default=None,
        help="The environment variable holding the API key (read when embedding, never "
        "stored), e.g. DASHSCOPE_API_KEY.",
    )(command)
    command = click.option(
        "--embedding-url",
        metavar="URL",
        default=None,
        help="Base URL of an OpenAI-compatible embeddings API, for openai:MODEL "
        "(e.g. https://dashscope.aliyuncs.com/compatible-mode/v1).",
    )(command)
    command = click.option(
        "--embedding",
        metavar="NAME[:MODEL]",
        default=None,
        help="default (USE, fast, offline), e5-small (better, slower, offline), "
        "onnx-minilm, st:MODEL or openai:MODEL. Default: the collection's own model, or "
        "`default` for a new collection.",
    )(command)
    return command


def chosen_spec(
    embedding: str | None, url: str | None, key_env: str | None
) -> EmbeddingSpec | None:
    """The spec the flags ask for, or None for "the collection's own, or the default"."""
    if embedding is None:
        if url or key_env:
            raise click.UsageError("--embedding-url and --embedding-key-env go with --embedding")
        return None
    options: dict[str, Any] = {}
    if url:
        options["base_url"] = url
    if key_env:
        options["api_key_env"] = key_env
    return spec_for(embedding, options)


def open_collection(
    client: haima.Client,
    name: str,
    spec: EmbeddingSpec | None,
    keyword: bool | None,
    reembed: bool,
) -> haima.Collection:
    """The collection to ingest into, created with `spec`'s model (or the default) and
    the keyword setting, or the existing one — refused if it holds another model's
    vectors, unless `reembed`."""
    if reembed and spec is None:
        raise click.UsageError("--reembed needs --embedding (the model to move to)")
    fn: Any = from_spec(dict(spec)) if spec is not None else DEFAULT
    if spec is not None:  # as the function describes itself, e.g. with its default model
        spec = spec_of(fn) or spec
    try:
        existing = client.get_collection(name, embedding_function=None)
    except haima.NotFoundError:
        enabled = True if keyword is None else keyword
        return client.create_collection(
            name, configuration={"keyword": {"enabled": enabled}}, embedding_function=fn
        )
    stored = existing.configuration.get("embedding_function")
    if spec is not None and (stored is None or model_identity(stored) != model_identity(spec)):
        was = model_identity(stored) if stored else "vectors of an unknown model"
        if not reembed:
            raise click.ClickException(
                f"collection {name!r} holds vectors of {was}, not of {model_identity(spec)}: "
                "vectors of two models are not comparable. Add --reembed to embed every "
                "record again with the new model, or ingest into another collection (-c)."
            )
        return reembed_collection(client, existing, fn)
    return client.get_collection(name, embedding_function=fn)


def reembed_collection(
    client: haima.Client, old: haima.Collection, fn: EmbeddingFunction
) -> haima.Collection:
    """A copy of `old` (ids, documents, metadata, settings) embedded by `fn`, under
    `old`'s name; `old` is deleted once the copy is complete. Until then the old
    collection stays as it was, so an interruption loses nothing (run again to finish)."""
    name = old.name
    staging = f"{name}-reembed"
    with contextlib.suppress(haima.NotFoundError):  # left by an interrupted run
        client.delete_collection(staging)
    settings = {k: v for k, v in old.configuration.items() if k in ("metric", "keyword")}
    settings["index"] = {"type": old.configuration["index"]["type"]}
    new = client.create_collection(
        staging, configuration=settings, metadata=old.metadata, embedding_function=fn
    )
    total = old.count()
    with progress_bar(total, f"re-embedding {name}", None) as advance:
        for offset in range(0, total, REEMBED_BATCH):
            batch = old.get(limit=REEMBED_BATCH, offset=offset, include=["documents", "metadatas"])
            documents = batch["documents"] or []
            missing = [i for i, d in zip(batch["ids"], documents, strict=True) if d is None]
            if missing:
                client.delete_collection(staging)
                raise click.ClickException(
                    f"--reembed: record {missing[0]!r} of {name!r} has no document to embed"
                )
            metadatas = batch["metadatas"]
            if metadatas is not None and all(m is None for m in metadatas):
                metadatas = None
            new.add(ids=batch["ids"], documents=documents, metadatas=metadatas)
            advance(len(batch["ids"]))
    retired = f"{name}-replaced"
    old.modify(name=retired)
    new.modify(name=name)
    client.delete_collection(retired)
    click.echo(f"{name}: re-embedded {total} records with {getattr(fn, 'name', fn)}", err=True)
    return client.get_collection(name, embedding_function=fn)
