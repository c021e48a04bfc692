"""Reading an import's file: its columns, its rows and their line numbers, streamed.

A CSV file has a header row naming its columns (in any order, some left out); an empty
cell is a column not given, and `extra` is a JSON object written as text. A JSON Lines
file has one object per line, blank lines skipped. Both are UTF-8 (a BOM is accepted:
Excel writes one). A column that is not one of `COLUMNS` stops the import before it
starts, so that a misspelt column never imports reports without the data it held."""

import codecs
import csv
import io
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from django.utils.translation import gettext as _

from ..validation import SignalementWriteSerializer

# The API's writable fields, then what a migration from another system needs.
API_COLUMNS = tuple(SignalementWriteSerializer.Meta.fields)
MIGRATION_COLUMNS = (
    "external_id",
    "status",
    "priority",
    "is_public",
    "created_at",
    "resolved_at",
    "department",
)
COLUMNS = (*API_COLUMNS, *MIGRATION_COLUMNS)
FORMATS = ("csv", "jsonl")


@dataclass(frozen=True)
class Problem:
    """Why a row was left out: its line in the file, the field ("" for the row as a
    whole, "extra.code" for an extra answer, as the API's `attr`) and the message."""

    line: int
    field: str
    message: str


class UnreadableFile(Exception):
    """The file cannot be imported at all (missing, not UTF-8, unknown columns…), or
    no further: `result` then counts what the batches before were."""

    result = None


@dataclass(slots=True)
class Row:
    """A row as read: its values by column (those given), or what makes it unreadable."""

    line: int
    data: dict
    problems: list[Problem] = field(default_factory=list)


def format_of(path: Path, given: str | None) -> str:
    if given:
        return given
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise UnreadableFile(
        _("Cannot tell the format of %(file)s from its extension: give --format csv or jsonl.")
        % {"file": path.name}
    )


def _unknown_columns(names: Iterable[str]) -> str:
    return _("Unknown columns: %(columns)s. Known columns: %(known)s.") % {
        "columns": ", ".join(sorted(names)),
        "known": ", ".join(COLUMNS),
    }


def _not_json(error: Exception) -> str:
    return _("Not valid JSON: %(error)s.") % {"error": error}


class Source(ABC):
    """A file opened for reading its rows, streamed; `position()` is how far it has
    been read, in bytes (for the progress)."""

    def __init__(self, path: Path):
        try:
            self.file = open(path, "rb")  # closed by close()
        except OSError as error:
            raise UnreadableFile(
                _("Cannot read %(file)s: %(error)s")
                % {"file": path, "error": error.strerror or error}
            ) from None
        self.size = os.fstat(self.file.fileno()).st_size

    def position(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        self.file.close()

    @abstractmethod
    def rows(self) -> Iterator[Row]:
        """The file's rows, in order, with their line numbers."""


class CsvSource(Source):
    """A CSV file with a header row naming its columns (in any order, some left out)."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.reader = csv.reader(io.TextIOWrapper(self.file, encoding="utf-8-sig", newline=""))
        try:
            header = next(self.reader, [])
        except (UnicodeDecodeError, csv.Error) as error:
            self.close()
            raise UnreadableFile(
                _("The header row cannot be read: %(error)s") % {"error": error}
            ) from None
        self.columns = [name.strip() for name in header]
        unknown = set(self.columns) - set(COLUMNS)
        if unknown:
            self.close()
            raise UnreadableFile(_unknown_columns(unknown))
        if len(set(self.columns)) != len(self.columns):
            self.close()
            raise UnreadableFile(_("A column appears twice in the header row."))

    def rows(self) -> Iterator[Row]:
        reader, columns = self.reader, self.columns
        width = len(columns)
        previous = reader.line_num
        try:
            for cells in reader:
                line, previous = previous + 1, reader.line_num  # a cell may span lines
                if len(cells) != width:
                    if not cells:
                        continue
                    message = _("%(cells)d cells, where the header row has %(columns)d.") % {
                        "cells": len(cells),
                        "columns": width,
                    }
                    yield Row(line, {}, [Problem(line, "", message)])
                    continue
                data = {name: cell for name, cell in zip(columns, cells, strict=True) if cell}
                extra = data.get("extra")
                if extra is not None:
                    try:
                        data["extra"] = orjson.loads(extra)
                    except orjson.JSONDecodeError as error:
                        yield Row(line, data, [Problem(line, "extra", _not_json(error))])
                        continue
                yield Row(line, data)
        except UnicodeDecodeError:
            raise UnreadableFile(
                _("Line %(line)d: the file is not UTF-8 text.") % {"line": previous + 1}
            ) from None
        except csv.Error as error:
            raise UnreadableFile(
                _("Line %(line)d: %(error)s") % {"line": previous + 1, "error": error}
            ) from None


class JsonLinesSource(Source):
    """One JSON object per line (blank lines skipped). The first object's keys are
    checked before anything is imported, as a CSV file's header row is; a later line
    with unknown keys is a bad row."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.lines = enumerate(self.file, start=1)
        self.first = None
        for number, line in self.lines:
            row = self._parse(number, line)
            if row is None:
                continue
            unknown = row.data.keys() - set(COLUMNS)
            if unknown:
                self.close()
                raise UnreadableFile(_unknown_columns(unknown))
            self.first = row
            break

    @staticmethod
    def _parse(number: int, line: bytes) -> Row | None:
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        if not line.strip():
            return None
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            return Row(number, {}, [Problem(number, "", _not_json(error))])
        if type(data) is not dict:
            return Row(number, {}, [Problem(number, "", _("Not a JSON object."))])
        return Row(number, data)

    def rows(self) -> Iterator[Row]:
        if self.first is None:
            return
        yield self.first
        known = frozenset(COLUMNS)
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        for number, line in self.lines:
            try:  # the usual line, without a call
                data = loads(line)
            except decode_error:
                data = None
            if type(data) is not dict:
                row = self._parse(number, line)
                if row is None:
                    continue
                yield row
            elif data.keys() <= known:
                yield Row(number, data)
            else:
                unknown = data.keys() - known
                yield Row(number, {}, [Problem(number, "", _unknown_columns(unknown))])


def open_source(path: Path, fmt: str | None = None) -> Source:
    """The file's rows, by format (`csv`, `jsonl`; by default from its extension)."""
    return {"csv": CsvSource, "jsonl": JsonLinesSource}[format_of(path, fmt)](path)
