"""Tests of the client contract that do not apply to the Milvus backend, each with why.
The `client_kind` fixture skips them for "milvus" with this reason; every other contract
test runs on `MilvusBackend` over milvus-lite (docs/scale-out.md, "What differs")."""

_NO_STEMMER = (
    "relies on English stemming (dogs = dog): Haima asks Milvus for its `stemmer` filter, "
    "which a Milvus server applies but milvus-lite ignores (it lowercases only)"
)

MILVUS_EXCLUSIONS: dict[str, str] = {
    "test_document_regex": (
        "Milvus has no regular expressions: `$regex` and `$not_regex` are refused with an "
        "error naming the operator and the backend (tests/test_milvus.py checks it)"
    ),
    "test_catastrophic_regex_runs_in_linear_time": (
        "Milvus has no regular expressions (`$regex` is refused, see test_document_regex)"
    ),
    "test_missing_rjieba_names_the_extra": (
        "Milvus segments text with its own analyzer (jieba, on the Milvus side); Haima's "
        "segmenter and rjieba are not used"
    ),
    "test_english_words_are_stemmed_and_case_folded": _NO_STEMMER,
    "test_where_and_where_document_together": _NO_STEMMER,
    "test_updated_document_is_found_by_new_words_only": _NO_STEMMER,
}
