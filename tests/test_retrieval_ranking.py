"""Fusion, recency, importance, MMR / de-duplication, query dates: pure units."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from langchain_persistent_memory import InvalidInputError
from langchain_persistent_memory.retrieval import SearchOptions, TimeRange, parse_query_time
from langchain_persistent_memory.retrieval.fusion import min_max, rrf, weighted_fusion
from langchain_persistent_memory.retrieval.rerank import (
    DETAIL_WORDS,
    date_factor,
    detail_factor,
    importance_factor,
    is_question,
    mmr_order,
    recency_factor,
)

NOW = datetime(2024, 3, 15, 12, 0, tzinfo=timezone.utc)  # a Friday


def test_rrf_rewards_agreement_between_rankings() -> None:
    fused = rrf([["a", "b", "c"], ["b", "d", "a"]])
    assert max(fused, key=fused.__getitem__) == "b"
    assert fused["a"] > fused["c"] > 0 and fused["a"] > fused["d"]
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)


def test_weighted_fusion_mixes_normalised_scores() -> None:
    dense = {"a": 0.9, "b": 0.5, "c": 0.1}
    keyword = {"c": 12.0, "b": 6.0}
    assert weighted_fusion(dense, keyword, 1.0) == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.0})
    assert weighted_fusion(dense, keyword, 0.0) == pytest.approx({"a": 0.0, "b": 0.5, "c": 1.0})
    half = weighted_fusion(dense, keyword, 0.5)
    assert half["b"] == pytest.approx(0.5) and half["a"] == half["c"] == pytest.approx(0.5)
    assert weighted_fusion({"a": 0.3}, {}, 0.5) == {"a": 0.5}
    assert min_max({"x": 2.0, "y": 2.0}) == {"x": 1.0, "y": 1.0}


@pytest.mark.parametrize(("text", "asks"), [
    ("What is her name?", True), ("Nice! Did you go? [shares a photo: a dog]", True),
    ("你去了吗？", True), ("Really? I went there.", False), ("Ok?! Sure.", False),
    ("no end mark", False), ("", False)])
def test_is_question_reads_the_last_end_mark(text: str, asks: bool) -> None:
    assert is_question(text) is asks


def test_recency_halves_the_weighted_part_each_half_life() -> None:
    assert recency_factor(NOW, NOW, 30, 1.0) == pytest.approx(1.0)
    assert recency_factor(NOW - timedelta(days=30), NOW, 30, 1.0) == pytest.approx(0.5)
    assert recency_factor(NOW - timedelta(days=60), NOW, 30, 0.5) == pytest.approx(0.625)
    assert recency_factor(NOW + timedelta(days=3), NOW, 30, 1.0) == pytest.approx(1.0)


def test_importance_is_neutral_at_the_default() -> None:
    assert importance_factor(0.5, 1.0) == 1.0
    assert importance_factor(1.0, 0.4) == pytest.approx(1.4)
    assert importance_factor(0.0, 0.4) == pytest.approx(0.6)
    assert importance_factor(0.9, 0.0) == 1.0


def test_date_factor_boosts_only_inside_the_span() -> None:
    span = TimeRange(NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert date_factor(NOW, span, 0.5) == 1.5
    assert date_factor(NOW - timedelta(days=2), span, 0.5) == 1.0
    assert date_factor(NOW, None, 0.5) == 1.0


def _unit(*rows: list[float]) -> np.ndarray:
    m = np.asarray(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_dedupe_drops_near_identical_hits_and_keeps_order() -> None:
    vectors = _unit([1, 0, 0], [1, 0.01, 0], [0, 1, 0], [0, 0, 1])
    scores = [0.9, 0.89, 0.5, 0.4]
    assert mmr_order(scores, vectors, 3, lambda_=None, dedupe_threshold=0.98) == [0, 2, 3]
    assert mmr_order(scores, vectors, 3, lambda_=None, dedupe_threshold=None) == [0, 1, 2]


def test_mmr_prefers_a_different_hit_over_a_similar_one() -> None:
    vectors = _unit([1, 0, 0], [1, 0.3, 0], [0, 1, 0])
    scores = [1.0, 0.95, 0.8]
    assert mmr_order(scores, vectors, 3, lambda_=1.0, dedupe_threshold=None) == [0, 1, 2]
    assert mmr_order(scores, vectors, 2, lambda_=0.5, dedupe_threshold=None) == [0, 2]
    assert mmr_order([], np.zeros((0, 3)), 3, lambda_=0.5, dedupe_threshold=0.9) == []


@pytest.mark.parametrize(("query", "start", "end"), [
    ("What did I do in May 2023?", datetime(2023, 5, 1), datetime(2023, 6, 1)),
    ("plans for december of 2022", datetime(2022, 12, 1), datetime(2023, 1, 1)),
    ("what happened on 8 May, 2023", datetime(2023, 5, 7), datetime(2023, 5, 10)),
    ("the party on March 3rd, 2021", datetime(2021, 3, 2), datetime(2021, 3, 5)),
    ("what did we discuss in 2022", datetime(2022, 1, 1), datetime(2023, 1, 1)),
    ("what did I say last year", datetime(2023, 1, 1), datetime(2024, 1, 1)),
    ("this year so far", datetime(2024, 1, 1), datetime(2025, 1, 1)),
    ("anything from last month?", datetime(2024, 2, 1), datetime(2024, 3, 1)),
    ("what did I eat yesterday", datetime(2024, 3, 14), datetime(2024, 3, 15)),
    ("last week's meeting", datetime(2024, 3, 4), datetime(2024, 3, 11)),
    ("my plans last weekend", datetime(2024, 3, 9), datetime(2024, 3, 11)),
    ("in June", datetime(2023, 6, 1), datetime(2023, 7, 1)),
    ("in February", datetime(2024, 2, 1), datetime(2024, 3, 1)),
    ("notes of 31 February, 2023", datetime(2023, 2, 1), datetime(2023, 3, 1)),  # no such day
    ("two weeks ago", datetime(2024, 2, 27), datetime(2024, 3, 5)),
])
def test_query_dates(query: str, start: datetime, end: datetime) -> None:
    span = parse_query_time(query, NOW)
    assert span == TimeRange(start.replace(tzinfo=timezone.utc), end.replace(tzinfo=timezone.utc))


@pytest.mark.parametrize("query", ["What is Alice's favourite colour?", "may I ask something",
                                   "room 2023 key", "the 2023 budget"])
def test_queries_without_a_time_change_nothing(query: str) -> None:
    assert parse_query_time(query, NOW) is None


def test_options_are_validated_and_split_from_filters() -> None:
    options, rest = SearchOptions.split({"mode": "keyword", "category": "x", "mmr": True})
    assert options.mode == "keyword" and options.mmr and rest == {"category": "x"}
    for bad in ({"mode": "fuzzy"}, {"fusion": "max"}, {"dense_weight": 1.5},
                {"candidates": 0}, {"recency_half_life_days": 0}, {"mmr": "yes"},
                {"importance_weight": float("nan")}, {"dedupe_threshold": True},
                {"answer_weight": 1.5}, {"question_discount": -0.1}):
        with pytest.raises(InvalidInputError):
            SearchOptions(**bad)


def test_detail_factor_grows_with_length_up_to_the_weight() -> None:
    assert detail_factor(0, 0.2) == 1.0
    assert detail_factor(DETAIL_WORDS // 3, 0.2) == pytest.approx(1.0 + 0.2 * (DETAIL_WORDS // 3)
                                                                  / DETAIL_WORDS)
    assert detail_factor(DETAIL_WORDS, 0.2) == detail_factor(10 * DETAIL_WORDS, 0.2) == 1.2
    assert detail_factor(10 * DETAIL_WORDS, 0.0) == 1.0
