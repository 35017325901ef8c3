"""`haima eval`: compare embedding models, indexes and search modes on a dataset."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, get_args

import click

import haima
from haima.backends.base import QUERY_MODES
from haima.config import IndexType
from haima.errors import HaimaError


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "haima" / "eval"


def _parse_ks(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[int, ...]:
    """`-k 1,5,10` or `-k 1 -k 10` → (1, 5, 10)."""
    ks: set[int] = set()
    for value in values or ("1,5,10",):
        for part in value.split(","):
            try:
                k = int(part)
            except ValueError:
                raise click.BadParameter(f"{part!r} is not an integer") from None
            if k < 1:
                raise click.BadParameter(f"k must be at least 1, got {k}")
            ks.add(k)
    return tuple(sorted(ks))


@click.command("eval")
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--split", default="test", show_default=True, help="qrels/<split>.tsv of a BEIR folder."
)
@click.option(
    "--corpus",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Corpus of a labelled questions file, when it is not beside it.",
)
@click.option(
    "--config",
    "config_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML configuration file (repeatable); instead of the flags below.",
)
@click.option(
    "--embedding",
    "embeddings",
    multiple=True,
    metavar="NAME[:MODEL]",
    help="default, e5-small, onnx-minilm, st:MODEL, openai:MODEL or random (repeatable).",
)
@click.option(
    "--index",
    "indexes",
    multiple=True,
    type=click.Choice(get_args(IndexType)),
    help="Index type (repeatable). Default: auto.",
)
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=click.Choice(QUERY_MODES),
    help="Search mode (repeatable).",
)
@click.option(
    "-k", "ks", multiple=True, callback=_parse_ks, help="Cut-offs, e.g. -k 1,5,10 (default)."
)
@click.option(
    "--limit-queries", type=click.IntRange(min=1), help="Evaluate a seeded sample of N queries."
)
@click.option(
    "--limit-docs",
    type=click.IntRange(min=1),
    help="Index about N documents (every judged document of the kept queries stays).",
)
@click.option(
    "--seed", default=0, show_default=True, help="Seed of the samples and of the bootstrap."
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Embedding cache folder. Default: ~/.cache/haima/eval.",
)
@click.option("--no-cache", is_flag=True, help="Embed everything afresh, caching nothing.")
@click.option("--url", help="Evaluate on a Haima server (its collections, created and deleted).")
@click.option(
    "--api-key", envvar="HAIMA_API_KEY", help="The server's API key (also HAIMA_API_KEY)."
)
@click.option(
    "--store-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the temporary stores go. Default: the system's temporary folder.",
)
@click.option("--keep-stores", is_flag=True, help="Keep the stores after the run.")
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON here."
)
@click.option(
    "--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Write CSV here."
)
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write Markdown here.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw recall@k curves and quality vs latency (PNG; needs haima[eval]).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the table.")
@click.option(
    "--tune-fusion",
    is_flag=True,
    help="Instead of comparing: find the hybrid fusion weight that ranks best on DATASET "
    "(cross-validated) for one --embedding.",
)
@click.option(
    "--folds",
    default=5,
    show_default=True,
    type=click.IntRange(min=2),
    help="Cross-validation folds of --tune-fusion.",
)
@click.option(
    "--write-to",
    metavar="COLLECTION",
    help="With --tune-fusion: store the chosen weight in this collection's configuration "
    "(of the store at --path, or of the server at --url).",
)
@click.option(
    "--path",
    "store_path",
    type=click.Path(file_okay=False, path_type=Path),
    help="The store holding the --write-to collection (default ./haima_data).",
)
def eval_command(
    dataset: Path,
    split: str,
    corpus: Path | None,
    config_files: tuple[Path, ...],
    embeddings: tuple[str, ...],
    indexes: tuple[str, ...],
    modes: tuple[str, ...],
    ks: tuple[int, ...],
    limit_queries: int | None,
    limit_docs: int | None,
    seed: int,
    cache_dir: Path | None,
    no_cache: bool,
    url: str | None,
    api_key: str | None,
    store_dir: Path | None,
    keep_stores: bool,
    json_path: Path | None,
    csv_path: Path | None,
    markdown_path: Path | None,
    plot_path: Path | None,
    quiet: bool,
    tune_fusion: bool,
    folds: int,
    write_to: str | None,
    store_path: Path | None,
) -> None:
    """Compare configurations side by side on DATASET: Recall@k, MRR, nDCG, MAP,
    latency, ingestion speed and size on disk.

    DATASET is a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), a folder
    with questions.csv/.jsonl and a corpus, or a questions file. Configurations come
    from --config files, or are every combination of --embedding, --index and --mode.
    `--json -` prints the JSON on standard output (the table then goes to stderr).
    """
    from haima import eval as ev
    from haima.eval._deps import require_eval

    if tune_fusion:
        from haima.cli._tune import run_tuning

        if config_files or modes or csv_path or markdown_path or plot_path:
            raise click.UsageError(
                "--tune-fusion takes --embedding (one), --index and --json; not --config, "
                "--mode, --csv, --markdown or --plot"
            )
        if url and (store_dir or keep_stores or store_path):
            raise click.UsageError("--store-dir, --keep-stores and --path do not go with --url")
        run_tuning(
            dataset=dataset,
            split=split,
            corpus=corpus,
            embeddings=embeddings,
            indexes=indexes,
            limit_queries=limit_queries,
            limit_docs=limit_docs,
            seed=seed,
            folds=folds,
            cache_dir=None if no_cache else (cache_dir or _default_cache_dir()),
            url=url,
            api_key=api_key,
            store_dir=store_dir,
            write_to=write_to,
            store_path=store_path,
            json_path=json_path,
            quiet=quiet,
        )
        return
    if write_to or store_path:
        raise click.UsageError("--write-to and --path go with --tune-fusion")

    if config_files and (embeddings or indexes or modes):
        raise click.UsageError("give --config files or --embedding/--index/--mode flags, not both")
    if url and (store_dir or keep_stores):
        raise click.UsageError("--store-dir and --keep-stores apply to embedded stores, not --url")
    if no_cache and cache_dir:
        raise click.UsageError("--no-cache and --cache-dir contradict each other")
    try:
        if plot_path:  # find out now, not after a long run
            require_eval("matplotlib", "matplotlib")
        configs = (
            [c for path in config_files for c in ev.load_configs(path)]
            if config_files
            else ev.product_configs(embeddings, indexes, modes)
        )
        _check_names(configs)
        data = ev.load_dataset(dataset, split=split, corpus=corpus)
        if limit_queries or limit_docs:
            data = data.subset(limit_queries, limit_docs, seed=seed)
    except HaimaError as exc:
        raise click.ClickException(str(exc)) from exc
    client = _server_client(url, api_key) if url else None
    target: Any = (
        ev.ServerTarget(client) if client is not None else ev.EmbeddedTarget(store_dir, keep_stores)
    )

    def log(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    try:
        run = ev.run_eval(
            data,
            configs,
            ks=ks,
            cache_dir=None if no_cache else (cache_dir or _default_cache_dir()),
            target=target,
            log=log,
            seed=seed,
        )
    except (HaimaError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if client is not None:
            client.close()
    to_stdout = json_path is not None and str(json_path) == "-"
    ev.print_report(run, _stderr_console() if to_stdout else None)
    try:
        if to_stdout:
            click.echo(ev.report_json(run))
        elif json_path:
            ev.write_json(run, json_path)
        if csv_path:
            ev.write_csv(run, csv_path)
        if markdown_path:
            ev.write_markdown(run, markdown_path)
        if plot_path:
            ev.write_plot(run, plot_path)
    except (HaimaError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    if any(r.error for r in run.results):
        raise SystemExit(1)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def _check_names(configs: list[Any]) -> None:
    names = [c.name for c in configs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise click.UsageError(
            f"configuration name(s) {', '.join(repeated)} used twice; give each a unique name"
        )


def _server_client(url: str, api_key: str | None) -> Any:
    """`haima.HttpClient.from_url(url)`, or a usage error when this haima lacks it."""
    from_url = getattr(getattr(haima, "HttpClient", None), "from_url", None)
    if from_url is None:
        raise click.UsageError(
            "--url needs haima.HttpClient.from_url(), which this version of haima does not "
            "have; leave out --url to evaluate on temporary embedded stores"
        )
    try:
        client = from_url(url, api_key=api_key) if api_key else from_url(url)
        client.heartbeat()  # fail now, before any embedding work
    except HaimaError as exc:
        raise click.UsageError(f"--url: {exc}") from exc
    except Exception as exc:  # the transport's own errors (refused, DNS, TLS)
        raise click.UsageError(f"--url: cannot reach {url}: {exc}") from exc
    return client
