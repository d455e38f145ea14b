"""Split CSV text into records before parsing them, so one record fails alone.

``csv.reader`` raises on a record it cannot read (a cell over ``csv.field_size_limit()``) and
is then left in the middle of that record: reading on would parse the rest of a quoted
multi-line cell as rows of its own, so the only safe reaction was to abort the whole import
(and ``line_num`` named the line before the bad one). Here the stream is first cut into
records by physical line, following the csv module's quoting rules (excel dialect: a quote
opens a quoted cell only at the start of a cell, ``""`` inside one is a quote, a newline inside
one belongs to the cell) just far enough to know where each record ends; each record's lines
are then handed to ``csv.reader`` on their own. A record that is too large is not kept in
memory at all, only counted, so a 2 GB cell costs no more memory than a small one.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# A record this long (in characters) is rejected without being parsed: eight cells at the
# csv module's default cell limit (131,072), far beyond any person's row.
MAX_RECORD_CHARS = 8 * csv.field_size_limit()


@dataclass(frozen=True, slots=True)
class Record:
    """One CSV record: its physical lines ``first``..``last`` (1-based) and its text, or None
    when it was larger than the limit (``rows`` then raises) or a quote never closed."""

    first: int
    last: int
    lines: list[str] | None
    unterminated: bool = False

    @property
    def where(self) -> str:
        return f"line {self.first}" if self.first == self.last else \
            f"lines {self.first}-{self.last}"

    @property
    def _span(self) -> str:
        """`` (lines a-b)`` for a row over several lines (a row is named by its last line)."""
        return "" if self.first == self.last else f" ({self.where})"

    def rows(self) -> list[list[str]]:
        """The record parsed by ``csv.reader``; raises ``ValueError`` with a reason."""
        if self.unterminated:
            raise ValueError(f"a quoted cell opened on line {self.first} is never closed, so "
                             f"the rest of the file ({self.where}) reads as one row")
        if self.lines is None:
            raise ValueError(f"the row{self._span} is larger than {MAX_RECORD_CHARS} "
                             "characters")
        try:
            return list(csv.reader(self.lines))
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise ValueError(f"the row{self._span} has a cell larger than "
                                 f"{csv.field_size_limit()} characters") from exc
            raise ValueError(f"the row{self._span} cannot be read: {exc}") from exc


def _ends_quoted(line: str, quoted: bool) -> bool:
    """Whether ``line`` ends inside a quoted cell, given whether it started inside one.

    Mirrors the states of CPython's ``_csv.c`` for the excel dialect: outside quotes only a
    quote at the start of a cell matters; inside, ``""`` is a literal quote and a lone quote
    ends the quoted part (what follows up to the next comma is still the same cell)."""
    if not quoted and '"' not in line:
        return False
    i, n = 0, len(line)
    while True:
        if quoted:
            j = line.find('"', i)
            if j < 0:
                return True
            if j + 1 < n and line[j + 1] == '"':
                i = j + 2  # an escaped quote
                continue
            quoted = False
            k = line.find(",", j + 1)
            if k < 0:
                return False
            i = k + 1
        elif i < n and line[i] == '"':
            quoted, i = True, i + 1
        else:
            k = line.find(",", i)
            if k < 0:
                return False
            i = k + 1


def records(lines: Iterable[str], *, max_chars: int = MAX_RECORD_CHARS) -> Iterator[Record]:
    """The records of ``lines`` (physical lines with their line endings, as a text file opened
    with ``newline=""`` yields them)."""
    kept: list[str] = []
    size = 0
    first = 0
    quoted = False
    number = 0
    for number, line in enumerate(lines, start=1):
        if size == 0:
            first = number
        size += len(line)
        if size <= max_chars:
            kept.append(line)
        elif kept:
            kept = []  # too large: forget the text, keep counting its lines
        quoted = _ends_quoted(line, quoted)
        if not quoted:
            yield Record(first, number, kept if size <= max_chars else None)
            kept, size = [], 0
    if size:
        yield Record(first, number, None if quoted or size > max_chars else kept,
                     unterminated=quoted)
