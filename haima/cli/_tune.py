"""`haima eval DATASET --tune-fusion`: the hybrid fusion weight that ranks best on a
labelled set, cross-validated, optionally written into a collection's configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from haima.errors import HaimaError


def run_tuning(
    *,
    dataset: Path,
    split: str,
    corpus: Path | None,
    embeddings: tuple[str, ...],
    indexes: tuple[str, ...],
    limit_queries: int | None,
    limit_docs: int | None,
    seed: int,
    folds: int,
    cache_dir: Path | None,
    url: str | None,
    api_key: str | None,
    store_dir: Path | None,
    write_to: str | None,
    store_path: Path | None,
    json_path: Path | None,
    quiet: bool,
) -> None:
    from haima import eval as ev
    from haima.cli._common import get_collection, open_client

    if len(embeddings) > 1 or len(indexes) > 1:
        raise click.UsageError("--tune-fusion tunes one --embedding with one --index at a time")
    to_stdout = json_path is not None and str(json_path) == "-"

    def log(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    try:
        config = ev.product_configs(embeddings or ("default",), indexes, ("hybrid",))[0]
        data = ev.load_dataset(dataset, split=split, corpus=corpus)
        if limit_queries or limit_docs:
            data = data.subset(limit_queries, limit_docs, seed=seed)
    except HaimaError as exc:
        raise click.ClickException(str(exc)) from exc
    server = None
    if url:
        from haima.cli._eval import _server_client

        server = _server_client(url, api_key)
    target: Any = ev.ServerTarget(server) if server is not None else ev.EmbeddedTarget(store_dir)
    try:
        result = ev.tune_fusion(
            data, config, folds=folds, seed=seed, cache_dir=cache_dir, target=target, log=log
        )
        if write_to:
            client = server if server is not None else open_client(store_path, None, create=False)
            collection = get_collection(client, write_to)
            ev.write_weight(collection, result.weight)
            result.written_to = write_to
            if server is None:
                client.close()
    except (HaimaError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if server is not None:
            server.close()
    if to_stdout:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    elif json_path:
        json_path.write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n")
    _print(result, err=to_stdout)


def _print(result: Any, *, err: bool) -> None:
    k = result.k
    lines = [
        f"fusion weight (keyword share) on {result.dataset}, {result.embedding}, "
        f"{result.queries} queries, nDCG@{k}:",
        *(
            f"  {weight:.1f}  {score:.3f}{'  ← best' if weight == result.weight else ''}"
            for weight, score in result.by_weight.items()
        ),
        f"keyword alone {result.keyword_ndcg:.3f}, vector alone {result.vector_ndcg:.3f}",
        f"{len(result.folds)}-fold cross-validation (seed {result.seed}): weights "
        + ", ".join(f"{f.weight:.1f}" for f in result.folds)
        + f"; held-out nDCG@{k} {result.cross_validated_ndcg:.3f}",
        f"chosen weight: {result.weight:.1f}"
        + (f", written to collection {result.written_to!r}" if result.written_to else ""),
    ]
    for line in lines:
        click.echo(line, err=err)
