"""Data for the console's tests and its timing script: a small bilingual text collection
(embedded by the server, keyword index on) and clustered vectors for the map.

Everything goes through the server's public API, as a user's data would.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

import haima

COLLECTIONS = "/api/v2/tenants/{tenant}/databases/{database}/collections"

#: (id, document, metadata): English and Chinese notes on a few topics.
# fmt: off
ARTICLES: list[tuple[str, str, dict[str, Any]]] = [
    ("en-hnsw", "HNSW builds a layered graph; a search walks from the top layer down to the nearest vectors.", {"lang": "en", "topic": "index", "year": 2021}),
    ("en-ivf", "IVF indexes split the vectors into lists around centroids and probe only a few lists per query.", {"lang": "en", "topic": "index", "year": 2020}),
    ("en-pq", "Product quantization compresses each vector into a few bytes of codebook indices.", {"lang": "en", "topic": "index", "year": 2019}),
    ("en-flat", "A flat index compares the query with every stored vector: exact, and slow for millions.", {"lang": "en", "topic": "index", "year": 2018}),
    ("en-filter", "Metadata filters narrow a search to the records whose fields match, such as year or language.", {"lang": "en", "topic": "filters", "year": 2023}),
    ("en-where", "The where clause supports equality, ranges, membership and nested and/or conditions.", {"lang": "en", "topic": "filters", "year": 2024}),
    ("en-bm25", "BM25 ranks documents by the words they share with the query, weighting rare words higher.", {"lang": "en", "topic": "keyword", "year": 2022}),
    ("en-hybrid", "Hybrid search fuses the keyword ranking and the vector ranking with reciprocal rank fusion.", {"lang": "en", "topic": "keyword", "year": 2024}),
    ("en-chunk", "Splitting long documents into overlapping chunks keeps each embedding focused on one idea.", {"lang": "en", "topic": "rag", "year": 2023}),
    ("en-rag", "Retrieval augmented generation gives a language model the passages it needs to answer.", {"lang": "en", "topic": "rag", "year": 2024}),
    ("en-eval", "Recall at k measures how many of the relevant documents appear among the first k results.", {"lang": "en", "topic": "eval", "year": 2022}),
    ("en-ndcg", "nDCG rewards relevant documents ranked near the top more than those ranked lower.", {"lang": "en", "topic": "eval", "year": 2021}),
    ("en-weather", "The weather in Beijing is dry and sunny in autumn, with cold winds in winter.", {"lang": "en", "topic": "travel", "year": 2020}),
    ("en-tea", "Green tea from Hangzhou is picked in early spring and roasted in iron pans.", {"lang": "en", "topic": "travel", "year": 2019}),
    ("en-train", "High speed trains connect Shanghai and Beijing in about four and a half hours.", {"lang": "en", "topic": "travel", "year": 2023}),
    ("en-cosine", "Cosine distance compares the directions of two vectors and ignores their lengths.", {"lang": "en", "topic": "index", "year": 2022}),
    ("en-norm", "Normalised embeddings have unit length, so inner product and cosine rank them alike.", {"lang": "en", "topic": "index", "year": 2023}),
    ("en-sqlite", "SQLite in WAL mode lets readers go on while one writer commits a transaction.", {"lang": "en", "topic": "storage", "year": 2021}),
    ("en-snapshot", "An index snapshot is written atomically and rebuilt from the database when it is corrupt.", {"lang": "en", "topic": "storage", "year": 2024}),
    ("en-crash", "Every acknowledged write survives a crash because it is committed before the answer.", {"lang": "en", "topic": "storage", "year": 2024}),
    ("zh-hnsw", "HNSW 索引构建分层图，查询从最上层逐层走向最近的向量。", {"lang": "zh", "topic": "index", "year": 2021}),
    ("zh-ivf", "倒排文件索引把向量分到若干聚类中心，每次查询只探查少数几个列表。", {"lang": "zh", "topic": "index", "year": 2020}),
    ("zh-filter", "元数据过滤把搜索限制在字段匹配的记录上，比如年份或语言。", {"lang": "zh", "topic": "filters", "year": 2023}),
    ("zh-bm25", "BM25 按照文档与查询共有的词语排序，罕见的词权重更高。", {"lang": "zh", "topic": "keyword", "year": 2022}),
    ("zh-hybrid", "混合检索用倒数排名融合把关键词排序和向量排序合在一起。", {"lang": "zh", "topic": "keyword", "year": 2024}),
    ("zh-chunk", "把长文档切成相互重叠的小块，让每个向量只表达一个意思。", {"lang": "zh", "topic": "rag", "year": 2023}),
    ("zh-rag", "检索增强生成把回答所需的段落交给大语言模型。", {"lang": "zh", "topic": "rag", "year": 2024}),
    ("zh-weather", "北京的天气秋天干燥晴朗，冬天刮寒冷的北风。", {"lang": "zh", "topic": "travel", "year": 2020}),
    ("zh-tea", "杭州的龙井茶在早春采摘，用铁锅炒制。", {"lang": "zh", "topic": "travel", "year": 2019}),
    ("zh-train", "高铁从上海到北京大约需要四个半小时。", {"lang": "zh", "topic": "travel", "year": 2023}),
    ("zh-beijing", "北京是中国的首都，故宫和长城每年吸引大量游客。", {"lang": "zh", "topic": "travel", "year": 2024}),
    ("zh-eval", "召回率衡量相关文档有多少出现在前 k 个结果里。", {"lang": "zh", "topic": "eval", "year": 2022}),
    ("zh-storage", "数据库在预写日志模式下，读者可以在写入者提交事务时继续读取。", {"lang": "zh", "topic": "storage", "year": 2021}),
    ("zh-crash", "每一次确认过的写入在崩溃后依然存在，因为它在应答之前已经提交。", {"lang": "zh", "topic": "storage", "year": 2024}),
]
# fmt: on

#: Clusters of the map collection and their sizes.
CLUSTERS = 5
MAP_DIM = 24


def collections_url(
    url: str, tenant: str = "default_tenant", database: str = "default_database"
) -> str:
    return url + COLLECTIONS.format(tenant=tenant, database=database)


def create_articles(
    url: str, name: str = "articles", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """The bilingual notes with the keyword index on, embedded by the server's default
    model (documents sent without embeddings, as a plain REST client would)."""
    with httpx.Client(timeout=120, headers=headers) as http:
        created = http.post(
            collections_url(url),
            json={"name": name, "configuration": {"keyword": {"enabled": True}}},
        )
        created.raise_for_status()
        collection: dict[str, Any] = created.json()
        added = http.post(
            f"{collections_url(url)}/{collection['id']}/add",
            json={
                "ids": [a[0] for a in ARTICLES],
                "documents": [a[1] for a in ARTICLES],
                "metadatas": [a[2] for a in ARTICLES],
            },
        )
        added.raise_for_status()
    return collection


def cluster_centres(seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((CLUSTERS, MAP_DIM)) * 4).astype(np.float32)


def create_points(
    url: str, count: int, name: str = "points", api_key: str | None = None, seed: int = 7
) -> tuple[np.ndarray, list[str]]:
    """`count` vectors around `CLUSTERS` centres, metadata {"cluster": "c<i>", "score":
    float}; returns the vectors and ids."""
    rng = np.random.default_rng(seed)
    centres = cluster_centres(seed)
    labels = rng.integers(0, CLUSTERS, count)
    vectors = (centres[labels] + rng.standard_normal((count, MAP_DIM))).astype(np.float32)
    ids = [f"p{i:05d}" for i in range(count)]
    metadatas = [
        {"cluster": f"c{label}", "score": round(float(rng.random()), 3)} for label in labels
    ]
    with haima.HttpClient.from_url(url, api_key=api_key) as client:
        collection = client.create_collection(name, embedding_function=None)
        for start in range(0, count, 2_000):
            stop = start + 2_000
            collection.add(
                ids=ids[start:stop],
                embeddings=vectors[start:stop],
                metadatas=metadatas[start:stop],  # type: ignore[arg-type]
                documents=[
                    f"point {i} of cluster {metadatas[i]['cluster']}"
                    for i in range(start, min(stop, count))
                ],
            )
    return vectors, ids
