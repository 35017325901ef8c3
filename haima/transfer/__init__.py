"""Moving data between stores: `export` to JSONL or Parquet files, `import_` them, and
`migrate` directly, between local stores and Haima or Chroma servers. Streaming,
resumable, verified by counts and checksums (docs/moving-data.md)."""

from haima.transfer.records import Batch, Checksum
from haima.transfer.run import (
    CollectionReport,
    TransferReport,
    VerificationError,
    export,
    import_,
    migrate,
    read_export,
)

__all__ = [
    "Batch",
    "Checksum",
    "CollectionReport",
    "TransferReport",
    "VerificationError",
    "export",
    "import_",
    "migrate",
    "read_export",
]
