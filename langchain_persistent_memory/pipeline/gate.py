"""A cheap local gate: turns with nothing memorable cost no model call.

Why: greetings, thanks and pure questions ("what's the capital of Peru?") are most of a chat,
and each would otherwise pay a full extraction call that returns nothing. The gate is
deliberately conservative, since a skipped fact is lost for good while a wasted call only
costs money: a sentence is *not memorable* only when

* it is a statement made only of small-talk words ("thanks, that's great!", "ok, got it"), or
* it is an English question with no first-person statement in it ("can you recommend a
  book?", "should I use tabs?"), while "any tips for my trip?" or "I moved, where should I
  eat?" still go to the model.

Anything else, including every non-English statement, goes to the model, and so does any
user message that answers a question the assistant asked earlier in the same turn ("Are you
vegetarian?" – "yes": the fact is in the pair, not in the "yes"). Measured on a
labelled corpus in ``benchmarks/smalltalk_gate.py`` (figures in benchmarks/README.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .messages import TurnMessage

__all__ = ["answers_a_question", "nothing_memorable"]



def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_SMALL_TALK = _words("""
hi hey hello hiya yo howdy greetings morning good afternoon evening night day bye
goodbye cya later see you soon take care cheers thanks thank thx ty much many lot so
very really appreciate appreciated it that's that this is was be been great awesome cool
nice perfect ok okay k alright fine sure yes yeah yep yup no nope nah maybe right
correct exactly indeed got understood understand i see makes sense sounds interesting
wow oh ah haha lol lmao hmm uh um well anyway please sorry no problem np welcome you're
your too also again just how are doing going what's up how's it the a an and or but all
for helpful help useful clear i'm i'll i'd me agree think guess know love hope have nice
a bit more let's go on continue done will do that'll work works neat amazing excellent
brilliant fantastic wonderful lovely fair enough true hello there bot assistant friend
buddy mate everything good bad not
""")
_ENGLISH_QUESTION = _words("""
what what's whats where where's when who who's whom whose why how how's which is are was
were do does did can could would should will shall may might must have has any anything
tell explain recommend suggest give show help you your the a an of in on to for
""")
# First-person statements inside a question: "my", "we've", or "I"/"we" followed by a verb
# ("I moved"); an inverted "should I" / "can I" asks about the user without stating a fact.
_FIRST_PERSON_WORDS = _words("""
my mine myself our ours ourselves i'm im i've ive i'd i'll we're we've we'd
""")
_INVERTING = _words("""
should can could would do did will shall may might must am have where what how when why
if whether so and or that
""")
_HEDGES = _words("""
think wonder guess mean
""")


def _states_something(words: list[str]) -> bool:
    for i, word in enumerate(words):
        if word in _FIRST_PERSON_WORDS:
            return True
        if word in ("i", "we") and (i == 0 or words[i - 1] not in _INVERTING) \
                and i + 1 < len(words) and words[i + 1] not in _HEDGES:
            return True
    return False


def _sentence_memorable(sentence: str) -> bool:
    text = sentence.strip().lower().replace("’", "'")
    words = _WORD.findall(text)
    if not words:
        return False  # emoji, punctuation
    if text.endswith("?"):
        if not any(w in _ENGLISH_QUESTION for w in words):
            return True  # not recognisably English: let the model judge
        return _states_something(words)
    return not all(w in _SMALL_TALK for w in words)


def nothing_memorable(user_texts: Sequence[str]) -> bool:
    """True when no user message of the turn can hold a fact worth a model call.

    Non-ASCII-letter text (any script other than Latin) always goes to the model.
    """
    for text in user_texts:
        if any(ch.isalpha() and not ch.isascii() for ch in text):
            return False
        if any(_sentence_memorable(s) for s in _SENTENCE.findall(text)):
            return False
    return True


def answers_a_question(turn: Sequence[TurnMessage]) -> bool:
    """True when a user message follows an assistant question within the turn."""
    asked = False
    for message in turn:
        if message.role == "assistant":
            asked = message.text.rstrip().endswith("?")
        elif message.role == "user" and asked:
            return True
    return False
