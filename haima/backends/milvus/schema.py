"""How a Haima collection is laid out in Milvus: the record fields, the index and the
search parameters, from the collection's configuration (docs/scale-out.md, "Mapping")."""

from __future__ import annotations

from typing import Any

from haima.backends.milvus.expressions import DOCUMENT_FIELD, ID_FIELD, TAGGED_FIELD
from haima.config import CollectionConfiguration, IndexConfig

#: The other record fields: the vector, the insertion sequence (`get`'s order) and,
#: with keyword search, the text BM25 reads and its sparse vector. Metadata lives in the
#: type-tagged JSON field alone: Milvus returns JSON as it was written (1 stays int, 1.0
#: float, key order kept), so `get` strips the tags and answers the metadata as given.
VECTOR_FIELD = "embedding"
SEQ_FIELD = "seq"
TEXT_FIELD = "text"
SPARSE_FIELD = "sparse"

#: Milvus's VARCHAR and JSON limit, in bytes: ids, documents and metadata must fit in it.
VARCHAR_MAX = 65_535

#: Haima's metric → Milvus's. Milvus answers similarities for COSINE and IP and the
#: squared distance for L2; `distance_of` turns them into Haima's distances.
MILVUS_METRICS = {"cosine": "COSINE", "ip": "IP", "l2": "L2"}

#: Fields a record is read with (the vector only when asked for).
RECORD_FIELDS = [ID_FIELD, DOCUMENT_FIELD, TAGGED_FIELD, SEQ_FIELD]

#: Milvus's analyzer for keyword search: jieba segments Chinese and splits other text on
#: spaces and punctuation; lowercase makes English matching case-insensitive, as
#: Haima's own keyword index is.
ANALYZER = {
    "tokenizer": "jieba",
    "filter": ["lowercase", {"type": "stemmer", "language": "english"}],
}


def record_schema(pymilvus: Any, client: Any, dimension: int, keyword: bool) -> Any:
    data_type = pymilvus.DataType
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(ID_FIELD, data_type.VARCHAR, is_primary=True, max_length=VARCHAR_MAX)
    schema.add_field(VECTOR_FIELD, data_type.FLOAT_VECTOR, dim=dimension)
    schema.add_field(DOCUMENT_FIELD, data_type.VARCHAR, max_length=VARCHAR_MAX, nullable=True)
    schema.add_field(TAGGED_FIELD, data_type.JSON)
    schema.add_field(SEQ_FIELD, data_type.INT64)
    if keyword:
        schema.add_field(
            TEXT_FIELD,
            data_type.VARCHAR,
            max_length=VARCHAR_MAX,
            enable_analyzer=True,
            analyzer_params=ANALYZER,
        )
        schema.add_field(SPARSE_FIELD, data_type.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            pymilvus.Function(
                name="bm25",
                function_type=pymilvus.FunctionType.BM25,
                input_field_names=[TEXT_FIELD],
                output_field_names=[SPARSE_FIELD],
            )
        )
    return schema


def index_params(client: Any, config: CollectionConfiguration, keyword: bool) -> Any:
    params = client.prepare_index_params()
    index_type, build = vector_index(config.index)
    params.add_index(
        VECTOR_FIELD,
        index_type=index_type,
        metric_type=MILVUS_METRICS[config.metric],
        params=build,
    )
    if keyword:
        params.add_index(SPARSE_FIELD, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    return params


def vector_index(index: IndexConfig) -> tuple[str, dict[str, Any]]:
    """Milvus's index type and build parameters for Haima's index settings. `auto` is
    Milvus's AUTOINDEX: the deployment picks (Haima's own switch from exact search to
    HNSW happens inside its engine, which Milvus does not have)."""
    if index.type == "flat":
        return "FLAT", {}
    if index.type == "hnsw":
        return "HNSW", {"M": index.max_neighbors, "efConstruction": index.ef_construction}
    if index.type == "ivf":
        return "IVF_FLAT", {"nlist": index.nlist or 1024}
    if index.type == "ivf_pq":
        pq: dict[str, Any] = {"nlist": index.nlist or 1024, "nbits": index.pq_nbits}
        if index.pq_m is not None:
            pq["m"] = index.pq_m
        return "IVF_PQ", pq
    if index.type == "sq8":
        return "IVF_SQ8", {"nlist": index.nlist or 1024}
    return "AUTOINDEX", {}


def search_params(config: CollectionConfiguration) -> dict[str, Any]:
    """`ef_search` and `nprobe` passed through to Milvus's search."""
    params: dict[str, Any] = {}
    if config.index.type == "hnsw":
        params["ef"] = config.index.ef_search
    if config.index.type in ("ivf", "ivf_pq", "sq8"):
        params["nprobe"] = config.index.nprobe
    return {"metric_type": MILVUS_METRICS[config.metric], "params": params}


def distance_of(metric: str, milvus_distance: float) -> float:
    """Haima's distance from what Milvus answers (cosine: 1 − cos, ip: 1 − dot, l2: the
    squared distance Milvus already gives)."""
    if metric == "l2":
        return milvus_distance
    return 1.0 - milvus_distance


def index_build_key(config: CollectionConfiguration) -> tuple[Any, ...]:
    """What decides the built index (search parameters excluded)."""
    index = config.index
    return (
        index.type,
        index.max_neighbors,
        index.ef_construction,
        index.nlist,
        index.pq_m,
        index.pq_nbits,
    )
