#!/usr/bin/env python3
"""LoCoMo retrieval benchmark for ``MemoryStore.search`` (local embeddings, no LLM).

Every dialog turn of a conversation becomes one memory of that conversation's own user
("Speaker: text [shares a photo: caption]", ``valid_from`` = the session date). Each
question of categories 1-4 is a query scoped to its conversation; gold = its evidence turns.
Metrics per question, macro-averaged overall and per category: recall@5, recall@10,
nDCG@10 (binary relevance), and query latency p50/p95 including embedding the query.

Baselines in the same run, on the same memories: ``dense`` (the store's vector path),
``bm25`` (rank_bm25 over lower-cased words, stop words removed) and ``rrf`` (naive
reciprocal-rank fusion of those two, k = 60).

Categories (LoCoMo authors' numbering): 1 multi-hop, 2 temporal, 3 open-domain,
4 single-hop; 5 (adversarial) is excluded. Malformed evidence ids are repaired where
unambiguous ('D8:6; D9:17', 'D:11:26', 'D30:05'); ids naming no turn are dropped.

The data (CC BY-NC 4.0) is not part of this repository; without it the script says so and
exits 0.

Usage:
  HF_HUB_OFFLINE=1 python benchmarks/locomo_retrieval.py [--data PATH] [--json OUT]
      [--db FILE] [--sweep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/benchmarks/data/locomo_dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
TUNE_CONVERSATIONS = 3  # the first three conversations choose settings; the rest check them
_SESSION = re.compile(r"^session_(\d+)$")
_DIA = re.compile(r"^D:?(\d+):(\d+)$")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@dataclass
class Question:
    conversation: int
    user_id: str
    category: int
    text: str
    gold: list[str]


# ----------------------------------------------------------------------------- data
def session_date(raw: str) -> datetime:
    """'1:56 pm on 8 May, 2023' -> aware UTC datetime."""
    return datetime.strptime(raw.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=timezone.utc)


def turns(sample: dict[str, Any], date_in_text: bool) -> list[dict[str, Any]]:
    conv = sample["conversation"]
    out = []
    for key in sorted((k for k in conv if _SESSION.match(k) and isinstance(conv[k], list)),
                      key=lambda k: int(k.split("_")[1])):
        when = session_date(conv[f"{key}_date_time"])
        for turn in conv[key]:
            body = f"{turn['speaker']}: {turn.get('text', '')}"
            if turn.get("blip_caption"):
                body += f" [shares a photo: {turn['blip_caption']}]"
            if date_in_text:
                body = f"[{conv[f'{key}_date_time']}] {body}"
            out.append({"content": body, "valid_from": when, "session_id": key,
                        "metadata": {"dia_id": turn["dia_id"]}})
    return out


def clean_evidence(raw: list[Any], valid: set[str]) -> list[str]:
    out: list[str] = []
    for item in raw:
        pieces = [str(item)] if item in valid else re.split(r"[;,\s]+", str(item))
        for piece in pieces:
            m = _DIA.match(piece)
            canon = piece if piece in valid else (
                f"D{int(m.group(1))}:{int(m.group(2))}" if m else "")
            if canon in valid and canon not in out:
                out.append(canon)
    return out


# ----------------------------------------------------------------------------- metrics
def score(ranked: list[str], gold: list[str]) -> dict[str, float]:
    wanted = set(gold)
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in wanted)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(len(wanted), 10)))
    return {"recall@5": len(wanted & set(ranked[:5])) / len(wanted),
            "recall@10": len(wanted & set(ranked[:10])) / len(wanted),
            "ndcg@10": dcg / idcg}


def summarise(rows: list[tuple[Question, dict[str, float]]]) -> dict[str, Any]:
    def mean(sel: list[dict[str, float]]) -> dict[str, float]:
        return {m: round(statistics.fmean(r[m] for r in sel), 4) if sel else float("nan")
                for m in ("recall@5", "recall@10", "ndcg@10")} | {"n": len(sel)}
    return {"overall": mean([r for _, r in rows]),
            "by_category": {name: mean([r for q, r in rows if q.category == c])
                            for c, name in CATEGORIES.items()}}


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    pick = lambda p: ms[min(len(ms) - 1, round(p / 100 * (len(ms) - 1)))]  # noqa: E731
    return {"p50": round(pick(50), 2), "p95": round(pick(95), 2)}


# ----------------------------------------------------------------------------- run
def build_store(data: list[dict[str, Any]], db: Path, date_in_text: bool,
                threads: int | None = None) -> Any:
    from langchain_persistent_memory import LocalEmbeddings, MemoryStore

    store = MemoryStore(f"sqlite:///{db}", embeddings=LocalEmbeddings(threads=threads),
                        dedupe=False,
                        index_path=db.with_suffix(".index"))
    for i, sample in enumerate(data):
        user = f"locomo-{i}"
        items = turns(sample, date_in_text)
        if store.count(user) != len(items):
            store.forget_user(user)
            store.add_many(items, user_id=user)
    return store


def questions(data: list[dict[str, Any]]) -> list[Question]:
    out = []
    for i, sample in enumerate(data):
        valid = {t["metadata"]["dia_id"] for t in turns(sample, False)}
        for qa in sample["qa"]:
            gold = clean_evidence(qa.get("evidence", []), valid)
            if int(qa["category"]) in CATEGORIES and gold:
                out.append(Question(i, f"locomo-{i}", int(qa["category"]), qa["question"], gold))
    return out


Ranker = Callable[[Question], list[str]]
# The store's vector path alone: cosine order, no session context, no re-ranking.
DENSE_ONLY: dict[str, Any] = {"mode": "dense", "context_weight": 0.0, "answer_weight": 0.0,
                              "question_discount": 0.0, "date_boost": 0.0,
                              "entity_weight": 0.0, "hop_weight": 0.0, "time_boost": 0.0,
                              "topic_weight": 0.0, "topic_focus": 0.0, "detail_weight": 0.0,
                              "dedupe_threshold": None, "mmr": False}


def evaluate(rank: Ranker, qs: list[Question]) -> tuple[list[tuple[Question, dict]], list[float]]:
    rows, latencies = [], []
    for q in qs:
        start = time.perf_counter()
        ranked = rank(q)
        latencies.append(time.perf_counter() - start)
        rows.append((q, score(ranked, q.gold)))
    return rows, latencies


def store_ranker(store: Any, **options: Any) -> Ranker:
    def rank(q: Question) -> list[str]:
        hits = store.search(q.text, user_id=q.user_id, k=10, **options)
        return [h.memory.metadata["dia_id"] for h in hits]
    return rank


def bm25_rankers(store: Any, data: list[dict[str, Any]]) -> tuple[Ranker, Ranker]:
    """The issue's baselines: rank_bm25 alone, and naive RRF of it with dense."""
    from rank_bm25 import BM25Okapi

    from langchain_persistent_memory.retrieval.fusion import rrf
    from langchain_persistent_memory.store.keyword import STOPWORDS

    def words(text: str) -> list[str]:
        return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS] or ["<empty>"]

    per_user = {}
    for i in range(len(data)):
        mems = store.list(f"locomo-{i}")
        per_user[f"locomo-{i}"] = ([m.metadata["dia_id"] for m in mems],
                                   BM25Okapi([words(m.content) for m in mems]))

    def bm25(q: Question) -> list[str]:
        ids, index = per_user[q.user_id]
        scores = index.get_scores(words(q.text))
        return [ids[j] for j in sorted(range(len(ids)), key=lambda j: -scores[j])]

    def naive_rrf(q: Question) -> list[str]:
        dense = [h.memory.metadata["dia_id"] for h in store.search(
            q.text, user_id=q.user_id, k=len(per_user[q.user_id][0]), **DENSE_ONLY)]
        fused = rrf([dense, bm25(q)])
        return sorted(fused, key=lambda d: -fused[d])[:10]

    return bm25, naive_rrf


# How the defaults were chosen: each row changes one thing from the default.
SWEEP: dict[str, dict[str, Any]] = {
    "default": {},
    **{f"dense_weight={w}": {"dense_weight": w} for w in (0.4, 0.6)},
    "fusion=rrf": {"fusion": "rrf"},
    **{f"context_weight={c}": {"context_weight": c} for c in (0.4, 0.6)},
    "no session context": {"context_weight": 0.0, "answer_weight": 0.0},
    **{f"answer_weight={a}": {"answer_weight": a} for a in (0.5, 0.6, 0.8)},
    **{f"question_discount={q}": {"question_discount": q} for q in (0.0, 0.1, 0.2)},
    "no question handling": {"answer_weight": 0.5, "question_discount": 0.0},
    "candidates=30": {"candidates": 30},
    "candidates=80": {"candidates": 80},
    "mmr off": {"mmr": False},
    "mmr_lambda=0.8": {"mmr_lambda": 0.8},
    "dedupe off": {"dedupe_threshold": None},
    "date_boost=0": {"date_boost": 0.0},
    "date_boost=1.0": {"date_boost": 1.0},
    "recency 180 days": {"recency_half_life_days": 180.0},
    "no entities": {"entity_weight": 0.0, "hop_weight": 0.0},
    **{f"entity_weight={w}": {"entity_weight": w} for w in (0.15, 0.5)},
    **{f"hop_weight={w}": {"hop_weight": w} for w in (0.0, 0.4)},
    **{f"time_boost={w}": {"time_boost": w} for w in (0.0, 0.6)},
    "no topic": {"topic_weight": 0.0, "topic_focus": 0.0},
    **{f"topic_weight={w}": {"topic_weight": w} for w in (0.0, 0.3, 1.0)},
    **{f"topic_focus={w}": {"topic_focus": w} for w in (0.0, 0.3)},
    **{f"detail_weight={w}": {"detail_weight": w} for w in (0.0, 0.1, 0.3)},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--db", type=Path, default=None,
                    help="SQLite file to keep the ingested store in (reused if complete)")
    ap.add_argument("--date-in-text", action="store_true",
                    help="also prefix each memory's text with its session date")
    ap.add_argument("--sweep", action="store_true",
                    help="compare settings on the tuning conversations and the held-out rest")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads per embedding call (default: the runtime's choice)")
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"LoCoMo data not found at {args.data}; skipping (pass --data PATH).")
        return 0
    data = json.loads(args.data.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "locomo.db"
        started = time.perf_counter()
        store = build_store(data, db, args.date_in_text, args.threads)
        ingest_s = time.perf_counter() - started
        store.embed_query("warm up")
        qs = questions(data)
        try:
            return report(store, data, qs, args, ingest_s)
        finally:
            store.close()


def report(store: Any, data: list[dict[str, Any]], qs: list[Question],
           args: argparse.Namespace, ingest_s: float) -> int:
    rows, lat = evaluate(store_ranker(store), qs)  # first: query embeddings not yet cached
    results: dict[str, Any] = summarise(rows) | {"latency_ms": percentiles(lat)}
    # The same run by split: settings were chosen on the first conversations only.
    results["splits"] = {
        "tune": summarise([r for r in rows if r[0].conversation < TUNE_CONVERSATIONS]),
        "held_out": summarise([r for r in rows if r[0].conversation >= TUNE_CONVERSATIONS])}
    bm25, naive = bm25_rankers(store, data)
    baselines = {"dense": store_ranker(store, **DENSE_ONLY),
                 "bm25": bm25, "rrf": naive}
    results["baselines"] = {}
    for name, ranker in baselines.items():
        b_rows, b_lat = evaluate(ranker, qs)
        results["baselines"][name] = summarise(b_rows) | {"latency_ms_cached_query":
                                                          percentiles(b_lat)}
    results["settings"] = {"memories": store.count(), "questions": len(qs),
                           "ingest_s": round(ingest_s, 1), "date_in_text": args.date_in_text,
                           "threads": args.threads,
                           "embedding_backend": store.embeddings.backend}
    print_table(results)
    if args.sweep:
        # Each setting re-asks the same questions: keep all their vectors in the query cache.
        store.embedder.keep_queries(2 * len(qs))
        tune = [q for q in qs if q.conversation < TUNE_CONVERSATIONS]
        held = [q for q in qs if q.conversation >= TUNE_CONVERSATIONS]
        results["sweep"] = {}
        for name, options in SWEEP.items():
            ranker = store_ranker(store, **options)
            results["sweep"][name] = {
                split: summarise(evaluate(ranker, sel)[0])["overall"]
                for split, sel in (("tune", tune), ("held_out", held))}
            print(f"{name:<32} " + "  ".join(
                f"{s}: r@10 {v['recall@10']:.4f} nDCG {v['ndcg@10']:.4f}"
                for s, v in results["sweep"][name].items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def print_table(results: dict[str, Any]) -> None:
    print(f"{'method':<8} {'scope':<12} {'n':>5} {'R@5':>7} {'R@10':>7} {'nDCG@10':>8}")
    methods = {"ours": results} | results["baselines"]
    for name, res in methods.items():
        scopes = [("overall", res["overall"]), *res["by_category"].items()]
        for scope, m in scopes:
            print(f"{name:<8} {scope:<12} {m['n']:>5} {m['recall@5']:>7.4f} "
                  f"{m['recall@10']:>7.4f} {m['ndcg@10']:>8.4f}")
    print("latency ms (ours, incl. query embedding):", results["latency_ms"])
    for split, res in results.get("splits", {}).items():
        for scope, m in [("overall", res["overall"]), *res["by_category"].items()]:
            print(f"ours/{split:<9} {scope:<12} {m['n']:>5} {m['recall@5']:>7.4f} "
                  f"{m['recall@10']:>7.4f} {m['ndcg@10']:>8.4f}")


if __name__ == "__main__":
    sys.exit(main())
