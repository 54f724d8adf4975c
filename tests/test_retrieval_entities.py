"""Entities: the local extractor, their matching in queries, and their use in ranking."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from langchain_persistent_memory import MemoryStore
from langchain_persistent_memory.entities import entity_key, extract_entities
from langchain_persistent_memory.retrieval.dates import asks_when, mentions_time
from langchain_persistent_memory.retrieval.entities import (
    entity_bonus,
    hop_scores,
    query_entities,
    topic_scores,
    topic_text,
    without_names,
)


def keys(text: str) -> list[tuple[str, str, bool]]:
    return [(e.key, e.kind, e.subject) for e in extract_entities(text)]


def test_speaker_is_the_subject_and_capitalised_names_are_mentions() -> None:
    assert keys("Caroline: Thanks, Melanie! A gift from my grandma in my home country, "
                "Sweden.") == [("caroline", "person", True), ("melanie", "name", False),
                               ("sweden", "name", False)]


def test_titles_multi_word_names_and_sentence_openers() -> None:
    found = keys('Melanie: I loved reading "Charlotte\'s Web". Researching schools in '
                 "New York City with Dr. Seuss books.")
    assert ("charlotte web", "title", False) in found
    assert ("new york city", "name", False) in found
    assert ("dr seuss", "name", False) in found
    assert all(k != "researching" for k, _, _ in found)  # a sentence's first word


def test_a_name_ending_a_sentence_does_not_run_into_the_next() -> None:
    assert [k for k, _, _ in keys("Bob: I saw Sweden. Researching it now, (Paris) too.")] \
        == ["bob", "sweden", "paris"]


def test_plain_text_without_names_has_no_entities() -> None:
    assert keys("i went hiking with the kids. It was great!") == []


def test_keys_fold_case_diacritics_and_possessives() -> None:
    assert entity_key("  Zoë's ") == "zoe"
    assert entity_key("New  York") == "new york"


def test_query_entities_match_known_keys_lower_case_longest_first() -> None:
    known = {"melanie", "new york", "new york city", "york"}.__contains__
    assert query_entities("what did melanie do in New York City?", known) == \
        {"melanie", "new york city"}
    assert query_entities("what did you eat", known) == set()


def test_topic_text_is_the_query_without_its_names_and_function_words() -> None:
    assert topic_text("What activities does Melanie partake in?", {"melanie"}) == \
        "activities partake"
    assert topic_text("What's Melanie's daughter's name?", {"melanie"}) == "daughter's name"
    assert topic_text("What did Melanie do in New York City?",
                      {"melanie", "new york city"}) is None


def test_without_names_turns_the_query_away_from_the_name() -> None:
    name, topic = np.eye(2)
    query = (3 * name + topic) / np.sqrt(10)
    vector = without_names(query, [name])
    assert vector is not None and vector @ topic > 0.3 and vector @ name < 0
    assert without_names(name, [name]) is not None  # reflected, not emptied
    assert without_names(topic, []) == pytest.approx(topic)


def test_topic_scores_ignore_what_an_entitys_memories_share() -> None:
    name, craft, talk = np.eye(3)
    rows = np.array([name + craft, name + talk, name + talk])
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    scores = topic_scores(rows, craft)
    assert scores[0] > 0.7 and scores[1] < 0 and scores[1] == scores[2]
    assert (rows @ craft)[0] < 0.71  # uncentred, the shared name dilutes it


def test_entity_bonus_prefers_the_subject_over_a_mention() -> None:
    wanted = {"melanie"}
    assert entity_bonus("melanie", frozenset(), wanted, 0.4) == 1.4
    assert entity_bonus("caroline", frozenset({"melanie"}), wanted, 0.4) == 1.2
    assert entity_bonus("caroline", frozenset(), wanted, 0.4) == 1.0
    assert entity_bonus("melanie", frozenset(), set(), 0.4) == 1.0


def test_hop_reaches_memories_sharing_an_uncommon_entity() -> None:
    mentions = {1: {"sweden"}, 2: {"sweden"}, 3: {"paris"}, 4: set()}
    members = {"sweden": [1, 2], "paris": [3]}
    scores = hop_scores({1: 1.0, 4: 0.5}, lambda pk: mentions[pk],
                        lambda key, limit: members.get(key), set(), 0.5)
    assert scores == {2: 0.5}
    # an entity the query names is no hop, and a common one (None) leads nowhere
    assert hop_scores({1: 1.0}, lambda pk: mentions[pk], lambda key, limit: members.get(key),
                      {"sweden"}, 0.5) == {}
    assert hop_scores({1: 1.0}, lambda pk: mentions[pk], lambda key, limit: None,
                      set(), 0.5) == {}


def test_time_mentions_and_when_questions() -> None:
    assert mentions_time("I went to the support group yesterday")
    assert mentions_time("We moved there in 2019")
    assert mentions_time("back in May 2023")
    assert not mentions_time("It may rain, I love it")
    assert asks_when("When did Caroline go to the support group?")
    assert asks_when("How long has she been painting?")
    assert not asks_when("What did Caroline paint?")


def test_search_prefers_what_the_named_person_said(store: MemoryStore) -> None:
    """Both memories share the query's words; only one is Melanie's own."""
    store.add_many(["Caroline: Melanie, I love painting sunsets at the lake",
                    "Melanie: I love painting sunsets at the lake, Caroline"],
                   user_id="u")
    query = "what does Melanie love painting"
    on = store.search(query, user_id="u", k=2, mmr=False)
    assert on[0].memory.content.startswith("Melanie:")
    off = store.search(query, user_id="u", k=2, mmr=False, entity_weight=0.0,
                       hop_weight=0.0)
    on_score = next(h.score for h in on if h.memory.content.startswith("Melanie:"))
    off_score = next(h.score for h in off if h.memory.content.startswith("Melanie:"))
    assert on_score > off_score


def test_hop_brings_in_a_memory_sharing_an_entity(store: MemoryStore) -> None:
    texts = ["Caroline: my grandma gave me this necklace in Sweden",
             "Caroline: I moved to Sweden when I was ten",
             *[f"Caroline: note {i} on tomatoes for grandma" for i in range(30)]]
    store.add_many(texts, user_id="u")

    def place(**options: float) -> int:
        hits = store.search("the necklace from grandma", user_id="u", k=len(texts),
                            mmr=False, **options)
        return [h.memory.content for h in hits].index(texts[1])

    # It shares no word with the query, only "Sweden" with the best match.
    assert place(hop_weight=0.0) > 10
    assert place() <= 3


def test_entities_follow_deletes(store: MemoryStore) -> None:
    kept = store.add("Caroline: I visited Sweden last year", user_id="u")
    gone = store.add("Caroline: Sweden was cold", user_id="u")
    assert gone is not None and kept is not None
    store.delete(gone.id, user_id="u")
    hits = store.search("Sweden", user_id="u", k=5)
    assert [h.memory.id for h in hits] == [kept.id]


def test_when_questions_prefer_memories_that_say_when(store: MemoryStore) -> None:
    when = datetime(2023, 5, 8, tzinfo=timezone.utc)
    store.add_many([{"content": "Caroline: the support group was lovely", "valid_from": when},
                    {"content": "Caroline: I went to the support group yesterday",
                     "valid_from": when}], user_id="u")
    hits = store.search("When did Caroline go to the support group?", user_id="u", k=2,
                        mmr=False)
    assert hits[0].memory.content.endswith("yesterday")


class NameHeavyEmbeddings(Embeddings):
    """A toy model that behaves like a real one where it matters here: a person's name
    dominates a short text's vector, and hobby words share one meaning (one axis)."""

    hobbies = frozenset({"hobbies", "pottery", "camping", "swimming"})
    names = ("melanie", "caroline")

    def _vector(self, text: str) -> list[float]:
        vector = np.zeros(64)
        for word in re.findall(r"[a-z]+", text.lower()):
            if word in self.hobbies:
                vector[0] += 1.0
            elif word in self.names:
                vector[1 + self.names.index(word)] += 3.0
            else:
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                vector[8 + int.from_bytes(digest, "little") % 56] += 1.0
        return list(vector / np.linalg.norm(vector))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


def test_topic_finds_a_persons_memories_about_what_the_question_asks(store_url: str,
                                                                      tmp_path: Path) -> None:
    """"What hobbies does Melanie have?": the whole question's vector is mostly "Melanie",
    so her short small talk outranks the turns about pottery, camping and swimming, which
    share no word with it. The question's vector without the name's direction finds them."""
    gold = ["Melanie: I signed up for pottery",
            "Melanie: we went camping",
            "Melanie: off swimming with the kids"]
    chat = [f"Melanie: {w} {v}!" for w, v in zip(
        ["thanks", "wow", "sure", "lovely", "great", "cool", "nice", "yes", "aww", "right",
         "haha", "indeed"], ["Caroline", "friend", "dear", "pal", "buddy", "mate", "honey",
                             "sweetie", "hun", "love", "girl", "darling"])]
    with MemoryStore(store_url, embeddings=NameHeavyEmbeddings(),
                     index_path=tmp_path / "i.lpm") as store:
        store.add_many([*chat[:6], *gold, *chat[6:]], user_id="u")

        def found(**options: float | str) -> int:
            hits = store.search("What hobbies does Melanie have?", user_id="u", k=5,
                                mmr=False, detail_weight=0.0, **options)  # the topic alone
            return len({h.memory.content for h in hits} & set(gold))

        assert found(topic_weight=0.0, topic_focus=0.0) == 1  # the ranking before
        assert found() == 3
        assert found(topic_focus=0.0) == 2  # the topic on the dense side alone
        assert found(topic_weight=0.0) == 2  # the focus among Melanie's memories alone
