"""A varied, reproducible corpus of memory texts for the entity extractor's regression test.

Sentences are assembled from fragments by a seeded generator, so every rule of
``entities.extract_entities`` is exercised in many combinations: speakers, names at and
after a sentence's start, possessives (straight and curly), titles in straight and curly
quotes, "Dr."-style prefixes, "of"/"the"/"de" runs, the alias forms (parenthetical, "or",
"aka", relations before and after a name), common capitalised words, digits, and text that
Unicode folding changes (diacritics, full-width letters, ligatures, dotted I).
"""

from __future__ import annotations

import random

__all__ = ["corpus", "given_names"]

_NAMES = ["Caroline", "Melanie", "Robert", "Bob", "Anna", "Sarah Jones", "José", "Zoë",
          "Ångström", "Dr. Seuss", "Mr. Smith", "St. Louis", "Bank of America",
          "Isle of the Dead", "Ana de Armas", "LGBTQ", "O'Brien", "Jean-Luc", "Ｔｏｋｙｏ",
          "Éric", "İstanbul", "Straße", "ﬁnn", "Mt. Fuji", "Sweden", "New York City",
          "Prof. Xavier", "Mel", "Tom", "Rex", "A1 Steak", "Nils_B", "Renée", "Q"]
_RELATIONS = ["sister", "best friend", "mom", "older brother", "dog", "colleague",
              "little cousin", "therapist", "fiancee", "roommate", "twin sister"]
_MINE = ["my", "My", "our", "the user's", "her", "his", "MY"]
_WORDS = ["went to", "loves", "met", "visited", "talked about", "Thanks", "Hi", "and",
          "yesterday", "Monday", "in 2022", "with", "I", "really", "Oh", "the", "at",
          "because", "Wow", "Great", "is from", "moved to", "called", "or", "aka"]
_TEMPLATES = [
    "{n1} {w} {n2}.",
    "{n1}: {w} {n2} {w2} {n3}!",
    "{n1}: {mine} {rel} {n2} {w} {n3}",
    "{w} {n1}, {mine} {rel}, {w2} {n2}.",
    "{n1} ({n2}) {w} {n3}",
    "{n1} (aka {n2}) {w}",
    "{n1} (called {n2}) and {n3}",
    "{n1} ({mine} {rel}) {w} {n2}",
    "I asked {n1}, or {n2}, to {w}",
    "{n1}, aka {n2}, {w} {n3}",
    "{n1} also known as {n2} {w}",
    "{n1}, nicknamed {n2}, {w}",
    "{n1} a.k.a. {n2}",
    "{mine} {rel}, {n1}, {w} {n2}",
    "{mine} {rel} {n1} {w}",
    "{mine} {rel}, {n1} and I {w}",
    "{n1}'s {w} \"{t}\" by {n2}",
    "{n1}\u2019s favourite is \u201c{t}\u201d.",
    "We read \"{t}\" with {n1}.\n{n2} {w} {n3}?",
    "{w} {n1}. {n2} {w2}\t{n3} of the {n1}",
    "{N1}: {w} {n2}",
    "{w} {w2} {n1} {n2} {n3} {n1} {n2} {n3}",
    "Thanks, {n1}! {w} {n2} and {n3} in 2023.",
    "{n1}: \"{t}\" and \u201c{t2}\u201d",
    "just text without any name at all",
    "{w} \U0001f600 {n1} \u2014 {n2}\u2026 {w2}",
    "{n1} {n1} {n1} ({n1})",
    "{n1}, my {rel}. {n2} (my {rel})",
    "{w}: {n1} {w2}",
]
_TITLES = ["Charlotte's Web", "Becoming Nicole", "a", "42", "The Little Prince",
           "Zoë's Song", "ok", "Nothing Here", "\u00e9t\u00e9 \u00e0 Paris"]


def corpus(count: int = 1200, seed: int = 12) -> list[str]:
    """``count`` texts, the same for a given seed."""
    rng = random.Random(seed)
    texts: list[str] = []
    for i in range(count):
        n1, n2, n3 = (rng.choice(_NAMES) for _ in range(3))
        text = rng.choice(_TEMPLATES).format(
            n1=n1, n2=n2, n3=n3, N1=n1.upper(), w=rng.choice(_WORDS), w2=rng.choice(_WORDS),
            mine=rng.choice(_MINE), rel=rng.choice(_RELATIONS), t=rng.choice(_TITLES),
            t2=rng.choice(_TITLES))
        if i % 7 == 0:
            text = text.lower()
        elif i % 11 == 0:
            text = f"{rng.choice(_NAMES)}: {text} " + " ".join(
                rng.choice(_NAMES + _WORDS) for _ in range(rng.randrange(5, 40)))
        texts.append(text)
    return texts


def given_names(texts: list[str], seed: int = 12) -> list[list[object]]:
    """Names a chat model might give for each text (some in it, some not, some with
    aliases), as ``AddOp.entities`` takes them."""
    rng = random.Random(seed)
    out: list[list[object]] = []
    for _ in texts:
        names: list[object] = []
        for _ in range(rng.randrange(0, 3)):
            name = rng.choice([*_NAMES, "pottery", "sister", "Anna Smith", "new york"])
            if rng.random() < 0.4:
                names.append({"name": name, "aliases": rng.sample(_NAMES[:12], 2)})
            else:
                names.append(name)
        out.append(names)
    return out
