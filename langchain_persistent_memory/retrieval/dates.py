"""Times named in a query ("in May 2023", "last year", "3 weeks ago") -> a UTC interval.

Memories carry ``valid_from`` (when they were said); a query that names a time can prefer
memories from that time. Parsing is deliberately small and rule-based: no model, no network,
and a query that names no time returns None so nothing changes.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["TimeRange", "asks_when", "mentions_time", "parse_query_time"]

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_MONTH = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|" \
         r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_YEAR = r"((?:19|20)\d{2})"
_EARLIEST = datetime(1, 1, 1, tzinfo=timezone.utc)
_UNITS = {"day": 1, "week": 7, "month": 30, "year": 365}
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
            "seven": 7, "eight": 8, "nine": 9, "ten": 10, "couple of": 2, "few": 3}

_DAY_MONTH_YEAR = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\.?,?\s+{_YEAR}\b")
_MONTH_DAY_YEAR = re.compile(rf"\b{_MONTH}\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+{_YEAR}\b")
_MONTH_YEAR = re.compile(rf"\b{_MONTH}\.?,?\s+(?:of\s+)?{_YEAR}\b")
_IN_MONTH = re.compile(rf"\b(?:in|during|since|of|last)\s+{_MONTH}\b")
_YEAR_ONLY = re.compile(rf"\b(?:in|during|of|since|from)\s+{_YEAR}\b")
_AGO = re.compile(r"\b(\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|couple of|few)"
                  r"\s+(day|week|month|year)s?\s+ago\b")
_RELATIVE = re.compile(r"\b(yesterday|today|tonight|(?:last|this|past)\s+(?:week|month|year|"
                       r"weekend))\b")
_TIME_MENTION = re.compile(
    r"\b(?:(?i:yesterday|tomorrow|tonight|ago|recently|lately|last\s+\w+|next\s+\w+|"
    r"this\s+(?:past\s+)?(?:week|weekend|month|year|morning|summer|winter|spring|fall)|"
    r"(?:mon|tues|wednes|thurs|fri|satur|sun)day|\d+\s+(?:day|week|month|year)s?)|"
    r"(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December)(?=\s+\d|,?\s+(?:19|20)\d\d)|(?:19|20)\d\d)\b")
_ASKS_WHEN = re.compile(r"^\W*(?:when|what\s+(?:date|year|month|day|time)|how\s+long|"
                        r"which\s+(?:year|month|day))\b", re.IGNORECASE)


def mentions_time(text: str) -> bool:
    """Whether ``text`` says when something happened ("yesterday", "last May", "in 2022")."""
    return _TIME_MENTION.search(text) is not None


def asks_when(query: str) -> bool:
    """Whether ``query`` asks for a time ("When did…", "How long…", "What year…")."""
    return _ASKS_WHEN.search(query) is not None


@dataclass(frozen=True)
class TimeRange:
    """A half-open interval ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def _month_range(year: int, month: int) -> TimeRange:
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
    return TimeRange(start, end)


def _day_range(year: int, month: int, day: int) -> TimeRange | None:
    try:
        start = datetime(year, month, day, tzinfo=timezone.utc)
    except ValueError:
        return None
    # A day said in conversation is fuzzy ("on 8 May" may mean the day before): ±1 day.
    return TimeRange(start - timedelta(days=1), start + timedelta(days=2))


def _relative(phrase: str, today: datetime) -> TimeRange:
    day = timedelta(days=1)
    if phrase == "yesterday":
        return TimeRange(today - day, today)
    if phrase in ("today", "tonight"):
        return TimeRange(today, today + day)
    which, unit = phrase.split()
    if unit == "weekend":
        saturday = today - timedelta(days=(today.weekday() - 5) % 7)
        if which == "last" and saturday + 2 * day > today:
            saturday -= 7 * day
        return TimeRange(saturday, saturday + 2 * day)
    if unit == "year":
        year = today.year - (which == "last")
        if which == "past":
            return TimeRange(today - 365 * day, today + day)
        return TimeRange(datetime(year, 1, 1, tzinfo=timezone.utc),
                         datetime(year + 1, 1, 1, tzinfo=timezone.utc))
    if unit == "month":
        if which == "past":
            return TimeRange(today - 31 * day, today + day)
        month, year = today.month, today.year
        if which == "last":
            month, year = (12, year - 1) if month == 1 else (month - 1, year)
        return _month_range(year, month)
    monday = today - timedelta(days=today.weekday())  # week
    if which == "past":
        return TimeRange(today - 7 * day, today + day)
    start = monday - 7 * day if which == "last" else monday
    return TimeRange(start, start + 7 * day)


def _ago(days: int, today: datetime) -> TimeRange | None:
    """About ``days`` before ``today``; None when that is before the calendar's start
    ("Rome 3000 years ago"): no memory can come from then, so the query names no usable time."""
    slack = max(1, days // 4)  # "ago" is vague
    if days + slack >= (today - _EARLIEST).days:
        return None
    center = today - timedelta(days=days)
    return TimeRange(center - timedelta(days=slack), center + timedelta(days=slack + 1))


def parse_query_time(query: str, now: datetime) -> TimeRange | None:
    """The time span a query names, relative to ``now``; None when it names none.

    The most specific explicit date wins (day > month > year), then relative phrases.
    """
    text = query.lower()
    now = now.astimezone(timezone.utc)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if m := _DAY_MONTH_YEAR.search(text):
        found = _day_range(int(m.group(3)), _MONTHS[m.group(2)], int(m.group(1)))
        if found:
            return found
    if m := _MONTH_DAY_YEAR.search(text):
        found = _day_range(int(m.group(3)), _MONTHS[m.group(1)], int(m.group(2)))
        if found:
            return found
    if m := _MONTH_YEAR.search(text):
        return _month_range(int(m.group(2)), _MONTHS[m.group(1)])
    if m := _YEAR_ONLY.search(text):
        year = int(m.group(1))
        return TimeRange(datetime(year, 1, 1, tzinfo=timezone.utc),
                         datetime(year + 1, 1, 1, tzinfo=timezone.utc))
    if m := _IN_MONTH.search(text):
        month = _MONTHS[m.group(1)]
        year = today.year if month <= today.month else today.year - 1  # the latest such month
        return _month_range(year, month)
    if m := _AGO.search(text):
        count = int(m.group(1)) if m.group(1).isdigit() else _NUMBERS[m.group(1)]
        return _ago(count * _UNITS[m.group(2)], today)
    if m := _RELATIVE.search(text):
        return _relative(" ".join(m.group(1).split()), today)
    return None
