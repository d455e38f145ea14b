"""Bulk import of people from CSV or JSON lines (``clarion contacts import``).

A file is read as a stream of ``(line, row)`` pairs; each row is mapped to person fields (CIJ's
column names are understood too), validated with the same rules as the API, and inserted in
chunks: one write transaction and one ``executemany`` per chunk, which on SQLite costs about
8 µs a row instead of a millisecond per transaction (see the performance notes). A bad row never
stops the import: it is reported with its line and the reason, and the rest goes in. A phone
number libphonenumber parses but does not know (unassigned) is imported in E.164 form with a
warning naming the line, rather than losing the person.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from clarion.clock import Clock
from clarion.config import Settings
from clarion.domain.people import new_person_values
from clarion.domain.text import loads
from clarion.errors import InvalidInput
from clarion.services.csv_records import records
from clarion.services.events import EventBus
from clarion.services.orgs import require_org
from clarion.store import people as store
from clarion.store.db import Conn, Database, Duplicate

SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")

# Column name (case-insensitive) -> person field. Anything else is a custom attribute.
COLUMNS = {
    "id": "id", "contactid": "id", "leadid": "id",
    "type": "kind", "kind": "kind",
    "email": "email", "emailaddress1": "email",
    "phone": "phone", "mobilephone": "phone",
    "first_name": "first_name", "firstname": "first_name",
    "last_name": "last_name", "lastname": "last_name",
    "time_zone": "time_zone", "timezone": "time_zone",
    "locale": "locale",
}


class UnreadableRow(dict[str, Any]):
    """A record the reader could not turn into a row (bad JSON, too many CSV cells): the
    import reports it as rejected with ``reason`` and goes on."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RejectedRow:
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class RowWarning:
    """An imported row with a value kept as given that deserves a look (an unknown number)."""

    line: int
    message: str


@dataclass(slots=True)
class ImportSummary:
    imported: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    warnings: list[RowWarning] = field(default_factory=list)


def _file_error(path: Path, message: str, fix: str) -> InvalidInput:
    return InvalidInput(f"{path}: {message}", fix=fix, field="file")


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise _file_error(path, "is neither CSV nor JSON lines",
                          "Name the file .csv (comma-separated, with a header line) or .jsonl "
                          "(one JSON object per line).")


def count_records(path: Path) -> int | None:
    """How many records ``path`` holds (for a progress bar), checking first that it exists and is
    UTF-8, so a broken file is refused before anything is imported. None for a JSON array."""
    _check_suffix(path)
    if not path.is_file():
        raise _file_error(path, "does not exist", "Check the path.")
    lines = 0
    first = b""
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise _file_error(path, f"line {number} is not UTF-8 ({exc.reason})",
                                  "Save the file as UTF-8 (in Excel: CSV UTF-8).") from exc
            if text.strip():
                lines += 1
                first = first or text.strip().encode()
    if path.suffix.lower() == ".csv":
        return max(lines - 1, 0)
    return None if first.startswith(b"[") else lines


def iter_csv(stream: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a CSV with a header line; empty cells are dropped (an absent value).

    A row's line is the physical line it ends on (a quoted cell may hold newlines). A record
    the csv module cannot read (a cell over its size limit, a quote never closed) is yielded
    as an ``UnreadableRow`` and the rest is read (``clarion.services.csv_records``)."""
    found = records(stream)
    header: list[str] = []
    for record in found:
        try:
            parsed = record.rows()
        except ValueError as exc:
            raise InvalidInput(f"the header cannot be read: {exc}", field="file",
                               fix="Give the file a header line naming its columns.") from exc
        if parsed and parsed[0]:
            header = parsed[0]
            break
    seen: set[str] = set()
    for name in header:
        key = name.strip().lower()
        if key and key in seen:
            raise InvalidInput(f"the header names the column {name!r} twice", field="file",
                               fix="Give every column a different name.")
        seen.add(key)
    for record in found:
        try:
            parsed = record.rows()
        except ValueError as exc:
            yield record.last, UnreadableRow(str(exc))
            continue
        for cells in parsed:
            if cells:  # blank lines are skipped, as csv.DictReader does
                yield record.last, _csv_row(header, cells)


def _csv_row(header: list[str], cells: list[str]) -> dict[str, Any]:
    extra = [c for c in cells[len(header):] if c and c.strip()]
    if extra:
        return UnreadableRow(f"the row has {len(extra)} more cell(s) than the header has "
                             "columns")
    row = {k.strip(): v for k, v in zip(header, cells, strict=False) if v.strip()}
    if "" in row:
        return UnreadableRow("the row has a value in a column without a name")
    return row


def iter_jsonl(stream: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """One JSON object per line (blank lines skipped); a JSON array of objects also works, and
    then the "line" of a row is its position in the array."""
    head, skipped = stream.read(1), 0
    while head and head.isspace():
        skipped += head == "\n"
        head = stream.read(1)
    if head == "[":
        # domain.text.loads: line and column in the error, the text rule (no NUL, no lone
        # surrogate), and orjson's nesting bound instead of a RecursionError.
        try:
            items = loads(head + stream.read(), what="the JSON array",
                          fix="Fix the JSON, or write one object per line.")
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field="file", fix=exc.fix) from exc
        if not isinstance(items, list):  # pragma: no cover - "[" starts an array or nothing
            raise InvalidInput("the file is not a JSON array", field="file",
                               fix="Write one object per line, or one array of objects.")
        for number, item in enumerate(items, start=1):
            yield number, _json_row(item)
        return
    first = True
    for number, text in enumerate(stream, start=1 + skipped):
        if first:
            text, first = head + text, False
        if not text.strip():
            continue
        try:
            row = loads(text, what="the line")
        except InvalidInput as exc:
            yield number, UnreadableRow(exc.message)
            continue
        yield number, _json_row(row)


def _json_row(item: object) -> dict[str, Any]:
    if not isinstance(item, dict):
        return UnreadableRow(f"expected a JSON object, found {type(item).__name__}")
    return item


def iter_rows(path: Path | str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, row)`` pairs of a ``.csv`` or ``.jsonl``/``.ndjson``/``.json`` file."""
    path = Path(path)
    _check_suffix(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            if path.suffix.lower() == ".csv":
                yield from iter_csv(stream)
            else:
                yield from iter_jsonl(stream)
    except UnicodeDecodeError as exc:
        raise _file_error(path, f"is not UTF-8 ({exc.reason})",
                          "Save the file as UTF-8 (in Excel: CSV UTF-8).") from exc
    except FileNotFoundError as exc:
        raise _file_error(path, "does not exist", "Check the path.") from exc


def row_to_data(row: Mapping[str, Any]) -> dict[str, Any]:
    """Person fields of a row: known columns (ours or CIJ's) by name, the rest as attributes."""
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    for raw_key, value in row.items():
        key = str(raw_key).strip()
        target = COLUMNS.get(key.lower())
        if target is None:
            if key.lower() == "attributes" and isinstance(value, Mapping):
                attributes.update(value)
            else:
                attributes[key] = value
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if target in data and data[target] != value:
            raise InvalidInput(f"columns {origin[target]} and {key} disagree ({data[target]!r} "
                               f"vs {value!r})", field=target, fix="Keep one of them.")
        data[target], origin[target] = value, key
    if not data.keys() - {"kind"} and not attributes:
        raise InvalidInput("the row is empty", fix="Remove it, or fill in at least one value.")
    data["attributes"] = attributes
    return data


def _reason(exc: InvalidInput) -> str:
    return f"{exc.message} ({exc.fix})" if exc.fix else exc.message


# line, values, explicit id, warnings
Pending = list[tuple[int, dict[str, Any], bool, list[str]]]


class Importer:
    def __init__(self, db: Database, clock: Clock, settings: Settings,
                 events: EventBus | None = None) -> None:
        self._db = db
        self._clock = clock
        self._region = settings.default_phone_region
        self._events = events  # publishes person.created, one job per chunk

    async def import_people(
        self, org_id: str, rows: Iterable[Mapping[str, Any] | tuple[int, Mapping[str, Any]]],
        *, on_progress: Callable[[int], None] | None = None, chunk_size: int = 1000,
    ) -> ImportSummary:
        """Import ``rows`` (mappings, numbered from 1, or ``(line, mapping)`` pairs as
        ``iter_rows`` yields) into the org. ``on_progress(n)`` is called after each chunk with
        the number of rows just handled (imported or rejected). Rejected rows and warnings
        come back sorted by line."""
        if chunk_size < 1:
            raise InvalidInput("chunk_size must be at least 1", fix="Use the default, 1000.")
        async with self._db.read() as conn:
            await require_org(conn, org_id)
        summary = ImportSummary()
        first_line: dict[str, int] = {}
        pending: Pending = []
        handled = 0
        for number, item in enumerate(rows, start=1):
            line, row = item if isinstance(item, tuple) else (number, item)
            handled += 1
            if isinstance(row, UnreadableRow):
                summary.rejected.append(RejectedRow(line, row.reason))
            else:
                notes: list[str] = []
                try:
                    data = row_to_data(row)
                    explicit = "id" in data
                    values = new_person_values(data, default_region=self._region,
                                               phone_warnings=notes)
                except InvalidInput as exc:
                    summary.rejected.append(RejectedRow(line, _reason(exc)))
                else:
                    earlier = first_line.setdefault(values["id"], line) if explicit else line
                    if earlier != line:
                        summary.rejected.append(RejectedRow(
                            line, f"id {values['id']} already appears on line {earlier}"))
                    else:
                        pending.append((line, values, explicit, notes))
            if len(pending) >= chunk_size:
                await self._flush(org_id, pending, summary)
                pending = []
            if handled >= chunk_size:
                if on_progress is not None:
                    on_progress(handled)
                handled = 0
        if pending:
            await self._flush(org_id, pending, summary)
        if on_progress is not None and handled:
            on_progress(handled)
        summary.rejected.sort(key=lambda r: r.line)
        summary.warnings.sort(key=lambda w: w.line)
        return summary

    async def _flush(self, org_id: str, pending: Pending, summary: ImportSummary) -> None:
        now = self._clock.now()
        taken = "a person with id {} already exists in this organization"
        rows = [(line, {**values, "org_id": org_id, "created_at": now, "updated_at": now},
                 notes) for line, values, _, notes in pending]
        rejected: list[RejectedRow] = []
        try:
            async with self._db.write() as conn:
                given = [values["id"] for _, values, explicit, _ in pending if explicit]
                existing = set(await store.kinds_of(conn, org_id, given)) if given else set()
                keep = []
                for line, row, notes in rows:
                    if row["id"] in existing:
                        rejected.append(RejectedRow(line, taken.format(row["id"])))
                    else:
                        keep.append((line, row, notes))
                if keep:
                    await store.insert_many(conn, [row for _, row, _ in keep])
                    await self._publish(conn, org_id, [row["id"] for _, row, _ in keep])
            summary.rejected += rejected
        except Duplicate:
            # Someone created one of these ids meanwhile: row by row, each in a savepoint.
            async with self._db.write() as conn:
                went_in = await store.insert_each(conn, [row for _, row, _ in rows])
                await self._publish(conn, org_id, [row["id"] for (_, row, _), ok
                                                   in zip(rows, went_in, strict=True) if ok])
            keep = []
            for (line, row, notes), ok in zip(rows, went_in, strict=True):
                if ok:
                    keep.append((line, row, notes))
                else:
                    summary.rejected.append(RejectedRow(line, taken.format(row["id"])))
        for line, row, notes in keep:
            summary.warnings.extend(RowWarning(line, note) for note in notes)
            summary.imported += 1
            summary.by_kind[row["kind"]] = summary.by_kind.get(row["kind"], 0) + 1

    async def _publish(self, conn: Conn, org_id: str, person_ids: list[str]) -> None:
        if self._events is not None:
            await self._events.publish_people_created(conn, org_id, person_ids)
