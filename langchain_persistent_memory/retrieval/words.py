"""Function words: carry no topic, shared by the keyword index and the topic query."""

from __future__ import annotations

__all__ = ["STOPWORDS"]

_STOPWORD_TEXT = """
    a an the and or but if of at by for with about against between into through during
    before after above below to from up down in out on off over under again further then once
    here there when where why how all any both each few more most other some such no nor not
    only own same so than too very s t can will just don should now i me my myself we our ours
    ourselves you your yours yourself yourselves he him his himself she her hers herself it its
    itself they them their theirs themselves what which who whom this that these those am is are
    was were be been being have has had having do does did doing would could ought let
    m re ve ll d"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
