"""`haima info`: versions, the store, the default embedding model, the LLM settings."""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from pathlib import Path
from typing import Any

import click

import haima
from haima.cli._common import (
    DEFAULT_PATH,
    NoStoreError,
    cli_errors,
    json_option,
    open_client,
    print_json,
    print_table,
    store_options,
)

#: The `rag` extra's packages: (import name, distribution name).
RAG_PACKAGES = (
    ("pypdf", "pypdf"),
    ("docx", "python-docx"),
    ("charset_normalizer", "charset-normalizer"),
)


def _version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return None


@click.command()
@store_options
@json_option
def info(path: Path | None, url: str | None, as_json: bool) -> None:
    """Show versions, the store and its collections, and the models in use."""
    import faiss

    from haima.embeddings import USEEmbeddingFunction
    from haima.rag.llm import ENV_API_KEY, ENV_BASE_URL, ENV_MODEL

    data: dict[str, Any] = {
        "haima": haima.__version__,
        "python": platform.python_version(),
        "faiss": getattr(faiss, "__version__", None),
        "numpy": _version("numpy"),
        "platform": platform.platform(terse=True),
        "executable": sys.executable,
    }
    folder = path if path is not None else DEFAULT_PATH
    data["store"] = url if url else str(folder.resolve())
    data["default_embedding_model"] = USEEmbeddingFunction().name  # not loaded, just named
    with cli_errors():
        try:
            client = open_client(path, url, create=False)
        except NoStoreError:
            data.update(collections=0, records=0, embedding_models=[])
            data["store"] += " (not created yet)"
        else:
            with client:
                collections = client.list_collections()
                data["collections"] = len(collections)
                data["records"] = sum(c.count() for c in collections)
                data["embedding_models"] = sorted(
                    {_model_name(c.configuration) for c in collections}
                )
    missing = [dist for module, dist in RAG_PACKAGES if importlib.util.find_spec(module) is None]
    data["rag_extra"] = "installed" if not missing else f"missing {', '.join(missing)}"
    data["llm_base_url"] = os.environ.get(ENV_BASE_URL) or None
    data["llm_model"] = os.environ.get(ENV_MODEL) or None
    data["llm_api_key"] = "set" if os.environ.get(ENV_API_KEY) else None
    if as_json:
        print_json(data)
        return
    rows = [(key, _show(value)) for key, value in data.items()]
    print_table(("", "value"), rows, title="haima info")


def _model_name(configuration: dict[str, Any]) -> str:
    spec = configuration.get("embedding_function")
    if not isinstance(spec, dict):
        return "(none stored: vectors given, or a user function)"
    return f"{spec.get('provider')}:{spec.get('model')}"


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    return str(value)
