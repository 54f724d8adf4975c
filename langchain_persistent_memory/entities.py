"""A local, rule-based entity extractor: who and what a memory is about, with no model.

Raw mode (no chat model) stores text as said, so entities come from the text's form:

* a leading ``"Name: ..."`` (a chat transcript's speaker) is the memory's **subject** — the
  person the memory is about, so "What does Melanie do to relax?" prefers Melanie's own
  words over Caroline's "Thanks, Melanie!";
* capitalised words and runs of them that do not start a sentence ("Sweden", "Dr. Seuss",
  "LGBTQ support group" gives "LGBTQ") are **names**, and a possessive "Melanie's" even
  when it does;
* a quoted title (``"Charlotte's Web"``) is a **title**;
* another name for one of them is an **alias**: a parenthetical ("Melanie (Mel)"), an
  "or"/"aka" apposition ("Robert, or Bob,", "Robert, aka Bob"), or a relation the user
  names them by ("my sister Anna", "Anna, my sister" give Anna the alias "sister"). An
  alias is matched in queries like the name ("what does my sister like?"); it is stored
  with the user's own links, so "sister" means Anna in this user's data only.

Keys are folded to lower case so "Sweden" and "sweden" are one entity. Pure code, no I/O:
the store runs it on every stored text, so entity links are a function of the rows in SQL.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

__all__ = ["ENTITY_KINDS", "MAX_ALIASES", "Entity", "entity_key", "extract_entities"]

ENTITY_KINDS = ("person", "name", "title")
_MAX_ENTITIES = 24  # per memory: a pasted list of names is not 200 entities
MAX_ALIASES = 8  # per entity and memory
_SPEAKER = re.compile(r"^\s*([A-Z][\w.'-]{0,40}(?: [A-Z][\w.'-]{0,40}){0,2})\s*:\s")
_QUOTED = re.compile(r"[\"\u201c]([^\"\u201d\n]{2,60})[\"\u201d]")
_NAME_WORD = r"(?:(?:Dr|Mr|Mrs|Ms|St|Mt|Jr|Prof)\.|[A-Z][\w'-]*)"  # "Dr." keeps its dot
# (?=[A-Z]) changes no match: it lets the scan skip other positions before trying \b
_CAPITALISED = re.compile(
    rf"(?=[A-Z])\b({_NAME_WORD}(?:[ \t]+(?:of[ \t]+|the[ \t]+|de[ \t]+)?{_NAME_WORD})*)")
_NAME = rf"{_NAME_WORD}(?:[ \t]+{_NAME_WORD}){{0,2}}"
_RELATIONS = ("best friend|friend|sister|brother|mother|mom|mum|father|dad|wife|husband|son|"
              "daughter|boyfriend|girlfriend|partner|fiance|fiancee|boss|cousin|aunt|uncle|"
              "grandma|grandmother|grandpa|grandfather|niece|nephew|colleague|coworker|"
              "roommate|neighbor|neighbour|therapist|mentor|kid|child|dog|cat")
_MINE = r"(?i:my|our|the user's)\s+(?:(?i:older|younger|little|big|baby|twin|elder)\s+)?"
# (name, alias) pairs; a relation's alias is the relation word(s). Most texts have no
# alias: ``_aliases`` runs a pattern only when a cheap test says it can match.
_PARENTHESIS = re.compile(
    rf"({_NAME})\s*\(\s*(?:(?:aka|a\.k\.a\.|also known as|called)\s+)?({_NAME})\s*\)")
_OR = re.compile(rf"({_NAME}),\s+or\s+({_NAME}),")  # Robert, or Bob,
_AKA_WORDS = ("aka", "a.k.a.", "known as", "nicknamed")  # each has a "k"
_AKA = re.compile(rf"({_NAME}),?\s+(?:aka|a\.k\.a\.|(?:also\s+)?known\s+as|nicknamed)\s+"
                  rf"({_NAME})")  # Robert, aka Bob
_RELATION = re.compile(rf"(?:my|our|user's)\s+(?:[a-z]+\s+)?(?:{_RELATIONS})\b")  # lower case
# "Anna, my sister," / "Anna (my sister)": the apposition must close, so "Thankfully, my
# son's ok" and "Marrying my partner" name nobody
_RELATION_AFTER = (
    re.compile(rf"({_NAME}),\s+{_MINE}({_RELATIONS})(?=\s*[,.;!?]|$)"),
    re.compile(rf"({_NAME})\s*\(\s*{_MINE}({_RELATIONS})\s*\)"),
)
# "my sister Anna", "my brother, Tom," (after a comma the apposition must close too: in
# "My girlfriend, Toby and I" Toby is someone else)
_RELATION_FIRST = re.compile(rf"\b{_MINE}({_RELATIONS})(?:\s+({_NAME})|,\s+({_NAME})(?=,))")
_SENTENCE_MARKS = ".!?\n\"\u201c:"
# Capitalised words that are no entity: sentence openers, pronouns, weekdays and months
# (times are handled by ``valid_from`` and query dates), interjections.
_NOT_NAMES_TEXT = """
    i i'm i've i'd i'll im ive a an the and but or so yes no yeah yep nope ok okay oh hey hi
    hello wow thanks thank thx sure well also just really great awesome cool nice good glad
    sorry congrats congratulations haha lol omg what when where who why how which that this
    these those there here it it's its he she they we you my your our their his her me us them
    monday tuesday wednesday thursday friday saturday sunday january february march april may
    june july august september october november december today tomorrow yesterday mr mrs ms dr
    is are was were do does did have has had can could would should will if then as at by for
    from in into of on to with not all any some every each both my mine let let's bye
"""
_NOT_NAMES = frozenset(_NOT_NAMES_TEXT.split())


class Entity(NamedTuple):
    """One entity mention: its display ``name``, folded ``key`` and ``kind``.

    ``subject`` is True for the memory's speaker (the person the memory is about).
    """

    name: str
    key: str
    kind: str
    subject: bool = False
    aliases: tuple[str, ...] = ()  # other names this memory gives it ("Mel", "sister")


_POSSESSIVE = re.compile(r"['\u2019]s\b")
_PUNCTUATION = re.compile(r"[^\w\s-]")


def entity_key(name: str) -> str:
    """The folded form names are matched by: lower case, no diacritics, single spaces,
    no possessive ``'s`` and no surrounding punctuation."""
    folded = name.strip().lower()
    if not folded.isascii():  # ASCII has no decomposition and no combining marks
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(_PUNCTUATION.sub(" ", _POSSESSIVE.sub("", folded)).split())


def _starts_sentence(text: str, at: int) -> bool:
    """Whether the word at ``at`` opens a sentence (only the spaces before it are read, so
    a long text costs linear time)."""
    while at > 0 and text[at - 1] in " \t":
        at -= 1
    return at == 0 or text[at - 1] in _SENTENCE_MARKS


def extract_entities(text: str) -> list[Entity]:
    """The entities ``text`` mentions, subject first, each key once."""
    found: dict[str, Entity] = {}

    def keep(name: str, kind: str, subject: bool = False) -> None:
        key = entity_key(name)
        if key and key not in found and len(found) < _MAX_ENTITIES and \
                key not in _NOT_NAMES and not key.isdigit():
            found[key] = Entity(name.strip(), key, kind, subject)

    body = text
    if m := _SPEAKER.match(text):
        keep(m.group(1), "person", subject=True)
        body = text[m.end():]
    aliases = _aliases(body)
    # A name at a sentence's start counts when it has an alias; a relation makes a person.
    for name, alias in sorted(aliases, key=lambda pair: not pair[1].islower()):
        keep(name, "person" if alias.islower() else "name")
    if '"' in body or "\u201c" in body:
        for m in _QUOTED.finditer(body):
            if any(c.isalpha() for c in m.group(1)):
                keep(m.group(1), "title")
    for m in _CAPITALISED.finditer(body):
        words = m.group(1).rstrip(".").split()
        # A sentence's first word is capitalised anyway: a lone one is no name ("Researching
        # adoption agencies"); common words are dropped from either end ("Thanks Melanie").
        if len(words) == 1 and _starts_sentence(body, m.start()) and \
                not words[0].endswith(("'s", "\u2019s")):
            continue  # unless possessive: "Melanie's kids"
        if name := _trimmed(" ".join(words)):
            keep(name, "name")
    return _with_aliases(found, aliases)


def _trimmed(name: str) -> str:
    """A name without common words at either end ("Hi Robert" is Robert)."""
    words = name.rstrip(".").split()
    while words and words[0].lower() in _NOT_NAMES:
        words = words[1:]
    while words and words[-1].lower() in _NOT_NAMES:
        words = words[:-1]
    return " ".join(words)


def _aliases(body: str) -> list[tuple[str, str]]:
    """(name, alias) pairs the text states: parentheticals, appositions, relations."""
    lowered = body.lower()
    patterns = [pattern for may, pattern in (
        ("(" in body, _PARENTHESIS), (", or " in body, _OR),
        ("k" in lowered and any(w in lowered for w in _AKA_WORDS), _AKA)) if may]
    relation = _RELATION.search(lowered) is not None
    if relation:
        patterns += _RELATION_AFTER
    pairs = [(m.group(1), m.group(2)) for pattern in patterns for m in pattern.finditer(body)]
    if relation:
        pairs += [(m.group(2) or m.group(3), m.group(1))
                  for m in _RELATION_FIRST.finditer(body)]
    out: list[tuple[str, str]] = []
    for name, alias in pairs:
        name = _trimmed(name)
        alias = alias.lower() if alias.islower() else _trimmed(alias)
        if name and alias and entity_key(name) != entity_key(alias) and \
                entity_key(alias) not in _NOT_NAMES:
            out.append((name, alias))
    return out


def _with_aliases(found: dict[str, Entity], aliases: list[tuple[str, str]]) -> list[Entity]:
    """The entities with their aliases; a name seen only as another's alias is no entity
    of its own ("Robert, or Bob," is one person)."""
    given: dict[str, list[str]] = {}
    for name, alias in aliases:
        key = entity_key(name)
        if key in found and len(given.get(key, ())) < MAX_ALIASES:
            given.setdefault(key, [])
            if entity_key(alias) not in map(entity_key, given[key]):
                given[key].append(alias)
    if not given:  # most texts: no alias, and each entity keeps its empty default
        return list(found.values())
    alias_keys = {entity_key(a) for names in given.values() for a in names}
    return [e._replace(aliases=tuple(given[key])) if key in given else e
            for key, e in found.items() if e.subject or key not in alias_keys or key in given]
