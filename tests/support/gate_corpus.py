"""Labelled user turns for the small-talk gate: ``True`` when the turn states something
worth remembering (a miss would lose a fact), ``False`` for small talk and pure questions."""

from __future__ import annotations

NOTHING = [
    "hi", "hello!", "hey there", "good morning", "thanks!", "thank you so much",
    "ok", "okay, got it", "cool", "great, thanks", "sounds good", "lol", "haha nice",
    "bye!", "see you later", "good night", "no problem", "sure", "yes please", "nope",
    "I see", "makes sense", "I'm fine, thanks", "that's helpful", "awesome, that works",
    "What is the capital of Peru?", "How do I reverse a list in Python?",
    "Can you recommend a good book?", "What's the weather like on Mars?",
    "Could you explain quantum entanglement simply?", "Who wrote Hamlet?",
    "How many grams are in a pound?", "Should I use tabs or spaces?",
    "Can you help me write a poem?", "What time zone is Tokyo in?",
    "Why is the sky blue?", "How does a heat pump work?", "What does HTTP 418 mean?",
    "Is it safe to eat raw cookie dough?", "Can I use Python for data science?",
    "What's a good name for a cat?", "Tell me a joke", "Give me three synonyms for happy?",
    "How do I boil an egg?", "Which is bigger, a lion or a tiger?",
    "What are the rules of chess castling?", "Any tips for public speaking?",
    "How long does it take to learn guitar?", "Where is the Eiffel Tower?",
    "What should I read next?", "Can you summarise that?", "What do you think?",
    "How are you doing today?", "what's up?", "How's it going?",
    "Could you rephrase that?", "Is that correct?", "Why?", "Really?",
    "And then what?", "Can you give an example?", "What does idempotent mean?",
    "Which is faster, SQLite or PostgreSQL?", "How do vaccines work?",
]
FACTS = [
    "I live in Lisbon", "I'm vegetarian", "My sister is a doctor", "I work at a bakery",
    "I switched to Neovim last month", "My daughter turns 7 in May",
    "I prefer window seats", "I'm allergic to peanuts", "We adopted a dog called Rex",
    "I can't eat gluten", "My name is Priya", "Call me Sam", "Love sushi.",
    "Just got back from Japan.", "Moving to Berlin next month.", "Vegan, by the way.",
    "I'm learning Japanese", "My favourite colour is green", "I hate cilantro",
    "I have two kids", "Any tips for my trip to Rome next week?",
    "I moved to Austin, where should I eat?", "What should I cook for my vegan sister?",
    "Do you remember my birthday is in June?", "Since I run marathons, what shoes?",
    "Please forget my old address", "Forget what I said about coffee",
    "Actually I don't drink coffee anymore", "My wife and I are expecting a baby",
    "I got promoted to team lead", "I use a Mac at work", "We're planning a trip to Peru",
    "I've been playing piano for ten years", "I'd rather not get emails on weekends",
    "I'll be in Paris from the 3rd to the 9th", "Our office is in Dublin",
    "Je suis végétarien", "Ich wohne in München", "Soy de Madrid", "我住在上海",
    "Allergic to shellfish btw", "Remember that I'm left-handed",
    "Note: my manager is called Eva", "thanks! also I'm diabetic",
    "ok, and my flight is on Friday", "Great. My cat is called Miso.",
    "hi, I'm the new data engineer", "I think I'll start running in the mornings",
    "Not a fan of horror movies", "Born in 1990, if that matters",
]
CORPUS = [(text, False) for text in NOTHING] + [(text, True) for text in FACTS]
