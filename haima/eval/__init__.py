"""Retrieval evaluation: choose an embedding model, index and search mode on your data.

    from haima.eval import load_dataset, run_eval, RunConfig, print_report
    dataset = load_dataset("my_beir_folder", split="test")
    run = run_eval(dataset, [RunConfig("use", "default"), RunConfig("e5", "e5-small")],
                   ks=(1, 5, 10), cache_dir="~/.cache/haima/eval")
    print_report(run)

The same as a command: `haima eval my_beir_folder --embedding default --embedding e5-small`.
See docs/evaluation.md. Plots and YAML configurations need `pip install 'haima[eval]'`.
"""

from haima.eval._deps import MissingEvalDependencyError
from haima.eval.baselines import RandomEmbeddingFunction
from haima.eval.configs import (
    EMBEDDINGS,
    MODES,
    RunConfig,
    config_from_mapping,
    load_configs,
    product_configs,
)
from haima.eval.datasets import (
    Dataset,
    DatasetError,
    Document,
    load_beir,
    load_dataset,
    load_labelled,
)
from haima.eval.metrics import (
    average_precision,
    directory_size,
    hit_at_k,
    mrr_at_k,
    ndcg_at_k,
    percentile,
    precision_at_k,
    recall_at_k,
    score_query,
    throughput,
)
from haima.eval.report import (
    markdown,
    print_report,
    report_json,
    to_dict,
    write_csv,
    write_json,
    write_markdown,
    write_plot,
)
from haima.eval.runner import (
    ConfigResult,
    EmbeddedTarget,
    EvalRun,
    ServerTarget,
    enable_keyword_index,
    run_eval,
)
from haima.eval.significance import paired_bootstrap
from haima.eval.tuning import TuningResult, tune_fusion, write_weight

__all__ = [
    "EMBEDDINGS",
    "MODES",
    "ConfigResult",
    "Dataset",
    "DatasetError",
    "Document",
    "EmbeddedTarget",
    "EvalRun",
    "MissingEvalDependencyError",
    "RandomEmbeddingFunction",
    "RunConfig",
    "ServerTarget",
    "TuningResult",
    "average_precision",
    "config_from_mapping",
    "directory_size",
    "enable_keyword_index",
    "hit_at_k",
    "load_beir",
    "load_configs",
    "load_dataset",
    "load_labelled",
    "markdown",
    "mrr_at_k",
    "ndcg_at_k",
    "paired_bootstrap",
    "percentile",
    "precision_at_k",
    "print_report",
    "product_configs",
    "recall_at_k",
    "report_json",
    "run_eval",
    "score_query",
    "throughput",
    "to_dict",
    "tune_fusion",
    "write_csv",
    "write_json",
    "write_markdown",
    "write_plot",
    "write_weight",
]
