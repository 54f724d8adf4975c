"""Keyword statistics of one user's memories: BM25 over stemmed words and word pairs.

Why per user and in process: a query's common words match some memory of almost every
user, so a global posting list (FTS5, a tsvector GIN index) made a search cost the whole
store's postings for those words. Here each user's partition holds its own postings, built
from the rows in SQL (:mod:`.partitions`), so a search costs that user's data only, and
SQLite and PostgreSQL rank identically (it is the same Python code on the same rows).

Words are folded (lower case, no diacritics) and stemmed with the Snowball English stemmer
(PyStemmer); function words are never query terms. Adjacent content-word pairs of a memory
are indexed too, so a query's "meteor shower" scores a memory with the words side by side
above one that has them apart. Query text is reduced to plain word tokens, so user input
has no syntax to inject. No I/O here.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np
import Stemmer  # type: ignore[import-not-found]

from ..retrieval.words import STOPWORDS

__all__ = ["STOPWORDS", "Analysed", "KeywordIndex", "analyse", "analyse_many", "query_phrases",
           "query_terms"]

_MAX_TERMS = 32
_ARRAY_MIN = 512  # postings at least this long are scored as arrays
K1 = 1.2  # BM25 term-frequency saturation (the usual value, also FTS5's)
B = 0.75  # BM25 length normalisation

_TOKEN_RE = re.compile(r"[^\W_]+", re.UNICODE)
_stemmer = Stemmer.Stemmer("english")
_stem_lock = threading.Lock()  # a PyStemmer object is not safe to share between threads


def _words(text: str) -> list[str]:
    """Lower-cased word tokens without diacritics ("Café" -> "cafe")."""
    folded = text.lower()
    if not folded.isascii():
        folded = "".join(c for c in unicodedata.normalize("NFKD", folded)
                         if not unicodedata.combining(c))
    return _TOKEN_RE.findall(folded)


def _stem(words: list[str]) -> list[str]:
    with _stem_lock:
        return list(_stemmer.stemWords(words))


Analysed = tuple[int, Counter[str]]  # (length in words, term and pair frequencies)


def analyse(text: str) -> Analysed:
    """A memory's length and the frequency of each stemmed content word and word pair."""
    return analyse_many([text])[0]


def analyse_many(texts: list[str]) -> list[Analysed]:
    """:func:`analyse` for many texts with one stemmer call (a partition load)."""
    split = [_words(text) for text in texts]
    stems = _stem([w for words in split for w in words])
    out: list[Analysed] = []
    at = 0
    for words in split:
        mine = stems[at:at + len(words)]
        at += len(words)
        keep = [w not in STOPWORDS for w in words]
        counts: Counter[str] = Counter([s for s, k in zip(mine, keep) if k])
        pairs = [f"{mine[i]} {mine[i + 1]}" for i in range(len(words) - 1)
                 if keep[i] and keep[i + 1]]
        if pairs:
            counts.update(pairs)
        out.append((len(words), counts))
    return out


def query_terms(query: str) -> list[str]:
    """Stemmed content words of ``query``, de-duplicated, in order (at most 32)."""
    words = [w for w in _words(query) if w not in STOPWORDS]
    return list(dict.fromkeys(_stem(words)))[:_MAX_TERMS]


def query_phrases(query: str) -> list[str]:
    """Stemmed pairs of content words next to each other in ``query`` ("meteor shower").

    Scored beside the single words, so a memory with the words side by side outscores one
    that has them apart (measured on LoCoMo: benchmarks/README.md).
    """
    words = _words(query)
    stems = _stem(words)
    pairs = [f"{stems[i]} {stems[i + 1]}" for i in range(len(words) - 1)
             if words[i] not in STOPWORDS and words[i + 1] not in STOPWORDS]
    return list(dict.fromkeys(pairs))[:_MAX_TERMS]


class KeywordIndex:
    """BM25 postings of one user's memories, keyed by the memory's integer key.

    Statistics (document count, average length, document frequency) cover every memory of
    the partition, so a filter never changes how a word is weighted.
    """

    __slots__ = ("_arrays", "_docs", "_postings", "_total_length")

    def __init__(self) -> None:
        self._postings: dict[str, dict[int, int]] = {}
        self._docs: dict[int, tuple[int, tuple[str, ...]]] = {}  # pk -> (length, terms)
        self._total_length = 0
        # Long postings as arrays (pks, term frequencies, lengths), built on first use and
        # dropped when the term changes: a big user's common word is scored by numpy.
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self._docs)

    def add(self, pk: int, analysed: Analysed) -> None:
        if pk in self._docs:
            self.remove([pk])
        length, counts = analysed
        self._docs[pk] = (length, tuple(counts))
        self._total_length += length
        arrays = self._arrays
        for term, tf in counts.items():
            self._postings.setdefault(term, {})[pk] = tf
            if arrays:
                arrays.pop(term, None)

    def remove(self, pks: Iterable[int]) -> None:
        for pk in pks:
            doc = self._docs.pop(pk, None)
            if doc is None:
                continue
            self._total_length -= doc[0]
            for term in doc[1]:
                self._arrays.pop(term, None)
                posting = self._postings[term]
                del posting[pk]
                if not posting:
                    del self._postings[term]

    def length(self, pk: int) -> int:
        """The memory's length in words (-1: not held)."""
        doc = self._docs.get(pk)
        return -1 if doc is None else doc[0]

    def postings_count(self) -> int:
        """Entries held (for the partition's memory estimate)."""
        return sum(len(doc[1]) for doc in self._docs.values())

    def search(self, terms: list[str], phrases: list[str], limit: int,
               keep: Callable[[int], bool]) -> dict[int, float]:
        """BM25 scores (higher is better) of the ``limit`` best memories that match a term
        or a phrase and pass ``keep``."""
        n = len(self._docs)
        if n == 0:
            return {}
        avg = max(self._total_length / n, 1.0)
        scores: dict[int, float] = {}
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        for term in (*terms, *phrases):
            posting = self._postings.get(term)
            if not posting:
                continue
            idf = math.log(1.0 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
            if len(posting) >= _ARRAY_MIN:
                pks, tf, lengths = self._term_arrays(term, posting)
                parts.append((pks, idf * tf * (K1 + 1.0)
                              / (tf + K1 * (1.0 - B + B * lengths / avg))))
                continue
            docs = self._docs
            for pk, count in posting.items():
                norm = K1 * (1.0 - B + B * docs[pk][0] / avg)
                scores[pk] = scores.get(pk, 0.0) + idf * count * (K1 + 1.0) / (count + norm)
        if parts:
            return self._best_of_arrays(parts, scores, limit, keep)
        ranked = sorted((pk for pk in scores if keep(pk)), key=lambda p: (-scores[p], -p))
        return {pk: scores[pk] for pk in ranked[:limit]}

    def _term_arrays(self, term: str, posting: dict[int, int]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        arrays = self._arrays.get(term)
        if arrays is None:
            pks = np.fromiter(posting, dtype=np.int64, count=len(posting))
            tf = np.fromiter(posting.values(), dtype=np.float64, count=len(posting))
            docs = self._docs
            lengths = np.fromiter((docs[pk][0] for pk in posting), dtype=np.float64,
                                  count=len(posting))
            arrays = self._arrays[term] = (pks, tf, lengths)
        return arrays

    @staticmethod
    def _best_of_arrays(parts: list[tuple[np.ndarray, np.ndarray]], small: dict[int, float],
                        limit: int, keep: Callable[[int], bool]) -> dict[int, float]:
        """Sum per memory the array-scored terms and the small postings, best first."""
        pks = np.concatenate([p for p, _ in parts]
                             + [np.fromiter(small, dtype=np.int64, count=len(small))])
        values = np.concatenate([v for _, v in parts]
                                + [np.fromiter(small.values(), dtype=np.float64,
                                               count=len(small))])
        unique, at = np.unique(pks, return_inverse=True)
        totals = np.bincount(at, weights=values)
        out: dict[int, float] = {}
        for i in np.lexsort((-unique, -totals)).tolist():
            pk = int(unique[i])
            if keep(pk):
                out[pk] = float(totals[i])
                if len(out) == limit:
                    break
        return out
