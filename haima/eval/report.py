"""The comparison, as a terminal table, JSON, CSV, Markdown and a plot.

In the table each column's best value is bold and starred (highest for quality and
ingestion speed, lowest for latency and size); the last column gives the paired bootstrap
p-value of each configuration's per-query nDCG@k against the best one.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haima.eval.runner import ConfigResult, EvalRun
from haima.eval.significance import DEFAULT_RESAMPLES

ALPHA = 0.05
STAR = "★"


@dataclass(frozen=True)
class Column:
    """One table column: its header, how to read a result, whether higher is better
    (None: not ranked) and how to print a value."""

    header: str
    value: Callable[[ConfigResult], float | None]
    higher_is_better: bool | None
    fmt: Callable[[float], str]


def columns(run: EvalRun) -> list[Column]:
    k = run.primary_k

    def metric(name: str) -> Callable[[ConfigResult], float | None]:
        return lambda r: r.metrics.get(name)

    quality = [Column(f"nDCG@{k}", metric(f"ndcg@{k}"), True, _fixed)]
    quality += [Column(f"R@{j}", metric(f"recall@{j}"), True, _fixed) for j in run.ks]
    quality += [
        Column(f"MRR@{k}", metric(f"mrr@{k}"), True, _fixed),
        Column(f"MAP@{k}", metric(f"map@{k}"), True, _fixed),
        Column(f"Hit@{min(run.ks)}", metric(f"hit@{min(run.ks)}"), True, _fixed),
    ]
    return [
        *quality,
        Column("p50 ms", lambda r: r.p50_ms if r.latencies_ms else None, False, _ms),
        Column("p95 ms", lambda r: r.p95_ms if r.latencies_ms else None, False, _ms),
        Column("docs/s", lambda r: r.ingest_docs_per_s if r.docs_indexed else None, True, _rate),
        Column(
            "size", lambda r: None if r.index_bytes is None else float(r.index_bytes), False, _size
        ),
    ]


def best_values(run: EvalRun, cols: Sequence[Column]) -> list[float | None]:
    """Each ranked column's best value over the configurations that ran."""
    out: list[float | None] = []
    for col in cols:
        values = [v for r in run.results if (v := _finite(col.value(r))) is not None]
        if col.higher_is_better is None or len(values) < 2:
            out.append(None)  # one configuration is not a comparison
        else:
            out.append(max(values) if col.higher_is_better else min(values))
    return out


def cells(run: EvalRun) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Headers and, per configuration, (text, is_best) cells; shared by every format."""
    cols = columns(run)
    bests = best_values(run, cols)
    headers = ["configuration", *(c.header for c in cols), "p"]
    compared = sum(1 for r in run.results if r.error is None) > 1
    rows = []
    for result in run.results:
        row: list[tuple[str, bool]] = [(result.config.name, result.best and compared)]
        for col, best in zip(cols, bests, strict=True):
            # a failed configuration's partial numbers (e.g. ingestion) are not comparable
            value = None if result.error else _finite(col.value(result))
            text = "—" if value is None else col.fmt(value)
            is_best = value is not None and best is not None and _same(value, best, col)
            row.append((text, is_best))
        row.append((_p_text(result), False))
        rows.append(row)
    return headers, rows


def summary_lines(run: EvalRun) -> list[str]:
    """The notes printed under the table: what was measured, significance, failures."""
    ds = run.dataset
    k = run.primary_k
    lines = [
        f"{ds.name} ({ds.split}): {len(ds.corpus)} documents, {run.evaluated_queries} queries"
        + (
            f"; {len(run.skipped_queries)} queries without a relevant document left out"
            if run.skipped_queries
            else ""
        )
        + (
            f"; {len(run.empty_documents)} empty documents not indexed"
            if run.empty_documents
            else ""
        ),
        *(f"subset: {note}" for note in ds.notes),
        f"{STAR} best in its column. Latency: one query at a time, search only (query "
        "vectors precomputed). Ingest: add + build_index with precomputed vectors. "
        "size: the store folder on disk.",
    ]
    best = next((r for r in run.results if r.best), None)
    if best is not None and any(r.p_value is not None for r in run.results):
        lines.append(
            f"p: paired bootstrap ({DEFAULT_RESAMPLES:,} resamples, seeded) on per-query "
            f"nDCG@{k} against the best, {best.config.name!r}; * = significant at {ALPHA}."
        )
        for result in run.results:
            if result.p_value is not None:
                verdict = "significantly" if result.p_value < ALPHA else "not significantly"
                diff = best.metrics[f"ndcg@{k}"] - result.metrics[f"ndcg@{k}"]
                lines.append(
                    f"  {result.config.name}: {diff:.3f} lower, {verdict} (p {_p_equals(result.p_value)})"
                )
    lines += [f"failed: {r.config.name}: {r.error}" for r in run.results if r.error]
    return lines


# -- terminal --------------------------------------------------------------------------------


def rich_table(run: EvalRun) -> Any:
    """A `rich.table.Table` of the comparison (rich is a core dependency)."""
    from rich.table import Table
    from rich.text import Text

    headers, rows = cells(run)
    # Text cells: names and paths are shown as written, never read as markup or emoji.
    table = Table(title=Text(f"haima eval — {run.dataset.name} ({run.dataset.split})"))
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*(Text(f"{t} {STAR}", style="bold") if best else Text(t) for t, best in row))
    return table


def print_report(run: EvalRun, console: Any | None = None) -> None:
    from rich.console import Console

    # Piped output is not cut to 80 columns: the table is read in files and logs.
    out = console or Console(width=None if sys.stdout.isatty() else 200)
    out.print(rich_table(run))
    for line in summary_lines(run):
        out.print(line, highlight=False, markup=False, emoji=False)


# -- files -----------------------------------------------------------------------------------


def to_dict(run: EvalRun) -> dict[str, Any]:
    """The whole run as JSON-able data (NaN and infinity become null)."""
    ds = run.dataset
    best = next((r.config.name for r in run.results if r.best), None)
    data: dict[str, Any] = _clean(
        {
            "dataset": {
                "name": ds.name,
                "split": ds.split,
                "documents": len(ds.corpus),
                "queries": len(ds.queries),
                "evaluated_queries": run.evaluated_queries,
                "skipped_queries": run.skipped_queries,
                "empty_documents": run.empty_documents,
                "notes": list(ds.notes),
            },
            "ks": list(run.ks),
            "primary_k": run.primary_k,
            "significance": {
                "test": "paired bootstrap",
                "metric": f"ndcg@{run.primary_k}",
                "resamples": DEFAULT_RESAMPLES,
                "alpha": ALPHA,
                "best": best,
            },
            "results": [_result_dict(r) for r in run.results],
        }
    )
    return data


def _result_dict(r: ConfigResult) -> dict[str, Any]:
    embedding = (
        r.config.embedding if isinstance(r.config.embedding, str) else repr(r.config.embedding)
    )
    return {
        "name": r.config.name,
        "embedding": embedding,
        "embedding_options": dict(r.config.embedding_options),
        "configuration": dict(r.config.configuration),
        "mode": r.config.mode,
        "best": r.best,
        "error": r.error,
        "metrics": r.metrics,
        "latency_ms": {
            "p50": r.p50_ms,
            "p95": r.p95_ms,
            "mean": sum(r.latencies_ms) / len(r.latencies_ms) if r.latencies_ms else None,
        },
        "ingest_docs_per_s": r.ingest_docs_per_s,
        "ingest_s": r.ingest_s,
        "embed_s": r.embed_s,
        "cache_hits": r.cache_hits,
        "cache_misses": r.cache_misses,
        "index_bytes": r.index_bytes,
        "p_value": r.p_value,
        "significant": None if r.p_value is None else r.p_value < ALPHA,
        "per_query": r.per_query,
    }


def report_json(run: EvalRun) -> str:
    return json.dumps(to_dict(run), ensure_ascii=False, indent=2, allow_nan=False)


def write_json(run: EvalRun, path: str | Path) -> None:
    Path(path).write_text(report_json(run) + "\n", encoding="utf-8")


def write_csv(run: EvalRun, path: str | Path) -> None:
    """One row per configuration: every metric at every k, latency, ingestion, size."""
    metric_names = sorted({m for r in run.results for m in r.metrics}, key=_metric_order)
    fields = [
        "name", "embedding", "index", "mode", *metric_names, "p50_ms", "p95_ms",
        "ingest_docs_per_s", "embed_s", "index_bytes", "p_value", "best", "error",
    ]  # fmt: skip
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for r in run.results:
            data = _result_dict(r)
            writer.writerow(
                _clean(
                    {
                        "name": r.config.name,
                        "embedding": data["embedding"],
                        "index": r.config.index_type,
                        "mode": r.config.mode,
                        **{m: r.metrics.get(m) for m in metric_names},
                        "p50_ms": data["latency_ms"]["p50"],
                        "p95_ms": data["latency_ms"]["p95"],
                        "ingest_docs_per_s": r.ingest_docs_per_s,
                        "embed_s": r.embed_s,
                        "index_bytes": r.index_bytes,
                        "p_value": r.p_value,
                        "best": r.best,
                        "error": r.error,
                    }
                )
            )


def markdown(run: EvalRun) -> str:
    """The table and its notes as Markdown (best values bold with a star)."""
    headers, rows = cells(run)
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(f"**{t} {STAR}**" if best else t for t, best in row) + " |")
    return "\n".join(lines) + "\n\n" + "\n".join(f"{line}  " for line in summary_lines(run)) + "\n"


def write_markdown(run: EvalRun, path: str | Path) -> None:
    Path(path).write_text(markdown(run), encoding="utf-8")


def write_plot(run: EvalRun, path: str | Path) -> None:
    """Recall@k curves (left) and nDCG@k against median latency (right), as a PNG
    (or any format matplotlib infers from the suffix). Uses the Agg canvas directly:
    no window, no pyplot global state."""
    from haima.eval._deps import require_eval

    require_eval("matplotlib", "matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    done = [r for r in run.results if r.error is None]
    k = run.primary_k
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    curves, scatter = figure.subplots(1, 2)
    for i, r in enumerate(done):
        curves.plot(
            list(run.ks),
            [r.metrics[f"recall@{j}"] for j in run.ks],
            marker="o",
            label=r.config.name,
        )
        scatter.scatter(r.p50_ms, r.metrics[f"ndcg@{k}"], s=60 if r.best else 30)
        # labels alternate above and below their points, so close neighbours stay legible
        scatter.annotate(r.config.name, (r.p50_ms, r.metrics[f"ndcg@{k}"]), fontsize=8,
                         xytext=(4, 4 if i % 2 == 0 else -11),
                         textcoords="offset points")  # fmt: skip
    curves.set(xlabel="k", ylabel="Recall@k", title="Recall@k", ylim=(0, 1.02), xticks=list(run.ks))
    curves.grid(alpha=0.3)
    if done:
        curves.legend(fontsize=8, loc="best")
    scatter.set(xlabel="median query latency (ms)", ylabel=f"nDCG@{k}",
                title="quality vs latency")  # fmt: skip
    scatter.grid(alpha=0.3)
    scatter.margins(0.15)  # room for the names beside the points
    figure.suptitle(f"{run.dataset.name} ({run.dataset.split})")
    figure.savefig(path, dpi=110)


# -- helpers ---------------------------------------------------------------------------------


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _same(value: float, best: float, col: Column) -> bool:
    """Equal as printed: a tie shown with the same digits is a tie."""
    return col.fmt(value) == col.fmt(best)


def _p_text(result: ConfigResult) -> str:
    if result.error is not None:
        return "failed"
    if result.best:
        return "best"
    if result.p_value is None:
        return "—"
    return _p(result.p_value) + (" *" if result.p_value < ALPHA else "")


def _p(value: float) -> str:
    """A p-value; 0 means no resample was as extreme, i.e. below the test's resolution."""
    return f"< {1 / DEFAULT_RESAMPLES:g}" if value == 0 else f"{value:.2g}"


def _p_equals(value: float) -> str:
    return _p(value) if value == 0 else f"= {value:.2g}"


def _fixed(value: float) -> str:
    return f"{value:.3f}"


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _size(value: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def _metric_order(name: str) -> tuple[int, str]:
    metric, _, k = name.partition("@")
    return (int(k) if k.isdigit() else 0, metric)


def _clean(value: Any) -> Any:
    """NaN and infinity → None, recursively (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
