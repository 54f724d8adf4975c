"""Attribution: a fact the user told about someone else must name that someone.

"My sister is vegetarian" is a fact about the sister; stored as "The user is vegetarian" it
would be a false fact about the user. The prompt asks the model to attribute such facts to
their subject; this check makes it a rule. It is deliberately conservative: it only speaks
when the evidence's subject is plainly a third person ("my <relation>" at the start of a
clause, or a name followed by a verb) *and* the user is not a subject too (no I, me, we …),
*and* the fact mentions neither the relation nor the name. English only.
"""

from __future__ import annotations

import re

from ..untrusted import fold

__all__ = ["misattributed"]

# The people (and pets) a user talks about: each group holds words that name the same
# relation, so "my mom" is rightly attributed by a fact about "the user's mother".
_KIN: tuple[tuple[str, ...], ...] = (
    ("mother", "mom", "mum", "mommy", "mama", "parent", "parents"),
    ("father", "dad", "daddy", "papa", "parent", "parents"),
    ("sister", "sis", "sibling"), ("brother", "bro", "sibling"),
    ("wife", "husband", "spouse", "partner", "boyfriend", "girlfriend", "fiance", "fiancee"),
    ("son", "daughter", "child", "children", "kid", "baby"),
    ("grandmother", "grandma", "granny", "grandfather", "grandpa", "grandparent"),
    ("aunt",), ("uncle",), ("cousin",), ("niece",), ("nephew",), ("friend",),
    ("roommate", "flatmate"), ("neighbour", "neighbor"), ("boss", "manager"),
    ("colleague", "coworker", "co-worker"), ("dog", "puppy", "pet"), ("cat", "kitten", "pet"),
)
# Each word, and every word that may stand for it in the fact.
_SAME: dict[str, frozenset[str]] = {
    word: frozenset(w for group in _KIN if word in group for w in group)
    for group in _KIN for word in group}

_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|im|ive|me|myself|we|we're|we've|"
                           r"we'll|us|ourselves)\b")
_CLAUSE_START = r"(?:^|[.!?;:,]\s*|\b(?:and|but|so|also|btw|because|oh|well)\s+)"
_RELATION = re.compile(_CLAUSE_START + r"(?:my|our)\s+(?:[a-z-]+\s+){0,2}?("
                       + "|".join(sorted(map(re.escape, _SAME), key=len, reverse=True))
                       + r")(?:s|es)?(?:'s)?\b")
_APPOSITION = re.compile(r"\s+([A-Z][a-z]+)\b")  # "my boss Tom"
_NAME = re.compile(r"^([A-Z][a-z]+)(?:'s\b|\s+(?:is|was|has|had|hates|loves|likes|works|"
                   r"lives|prefers|wants|needs|does|doesn't|can't|won't|isn't|got|just)\b)")
_NOT_NAMES = frozenset({
    "it", "this", "that", "there", "here", "he", "she", "they", "you", "everything",
    "nothing", "everyone", "someone", "nobody", "today", "tomorrow", "yesterday", "what",
    "which", "who", "where", "when", "why", "how", "the", "a", "an", "my", "our", "your",
    "his", "her", "their", "its", "yes", "no", "also", "and", "but", "so", "now", "work",
    "life", "home"})


def _mentions(fact: str, word: str) -> bool:
    return re.search(rf"\b{re.escape(word)}", fact) is not None


def misattributed(evidence: str, fact: str) -> str | None:
    """Whom the evidence is about when the fact fails to say so (None: nothing wrong)."""
    said = fold(evidence).replace("\u2019", "'")
    lower = said.lower()
    if _FIRST_PERSON.search(lower):
        return None  # the user is a subject too ("my sister and I …")
    text = fold(fact).replace("\u2019", "'").lower()
    subjects: list[str] = []
    for match in _RELATION.finditer(lower):
        relation = match.group(1)
        named = _APPOSITION.match(said, match.end()) if len(said) == len(lower) else None
        if any(_mentions(text, w) for w in _SAME[relation]) or \
                (named and _mentions(text, named.group(1).lower())):
            return None
        subjects.append(f"the user's {relation}")
    if not subjects:
        name = _NAME.match(said.strip())
        if name and name.group(1).lower() not in _NOT_NAMES \
                and not re.search(r"\b(?:my|our|mine)\b", lower) \
                and not _mentions(text, name.group(1).lower()):
            subjects.append(name.group(1))
    return subjects[0] if subjects else None
