"""Guess a log file's format from its first bytes, and expand the paths a user gave.

`detect_format` reads at most SNIFF_BYTES of (decompressed) text and the first SNIFF_LINES non-blank
lines, never the whole file; Parquet is recognised by its "PAR1" magic and classified from the
schema in its footer. Rules, first match wins:

  Parquet with Langfuse observation columns (type + input/output)       -> "langfuse"
  other Parquet                                                        -> "parquet"
  *.csv / *.tsv (optionally .gz)                                       -> "csv"
  text starting with "[" (a JSON array)                                -> "langfuse"
  text starting with {"<Intent>": [{"data": [ (Snips span annotations) -> "snips"
  first JSON object line with "flywheel_spool"                         -> "spool"
  ... with exactly timestamp, workload_id, client_id, request, response -> "nvidia"
  ... with "custom_id" and "response" (with "body") or "error"         -> "openai_batch"
  ... with "request"                                                   -> "openai"
  ... with "type" in GENERATION/SPAN/EVENT, or "traceId"/"startTime"  -> "langfuse"
Anything else (empty, binary, an unknown schema, a Batch API *input* file) raises SourceError asking
for --format.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from connectors.base import REGISTRY, SourceError, open_binary

SNIFF_BYTES = 256 * 1024
SNIFF_LINES = 20
PARQUET_MAGIC = b"PAR1"
NVIDIA_KEYS = frozenset({"timestamp", "workload_id", "client_id", "request", "response"})
LANGFUSE_TYPES = ("GENERATION", "SPAN", "EVENT")
LANGFUSE_KEYS = ("traceId", "startTime")
TABLE_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")
SNIPS_HEAD = re.compile(rb'^\s*\{\s*"[^"]*"\s*:\s*\[\s*\{\s*"data"\s*:\s*\[')
KNOWN_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet", *TABLE_SUFFIXES)


def detect_format(path: Path) -> str:
    """The connector name for `path`, or SourceError saying why it cannot be told."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if path.is_dir():
        raise SourceError(f"{path}: is a directory")
    with path.open("rb") as probe:
        magic = probe.read(4)
    if magic == PARQUET_MAGIC:
        return _parquet_kind(path)
    if path.name.lower().endswith(TABLE_SUFFIXES):
        return "csv"
    lines = _head_lines(path)
    if not lines:
        raise _undetectable(path, "empty file")
    if lines[0].lstrip().startswith(b"["):
        return "langfuse"
    if SNIPS_HEAD.match(b"".join(lines)):
        return "snips"
    for line in lines:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # one broken line must not hide the format of the file
        if isinstance(doc, dict):
            return _classify(path, doc)
    text = b"".join(lines)
    if all(f'"{key}"'.encode() in text for key in LANGFUSE_KEYS):
        return "langfuse"  # a pretty-printed Langfuse document
    why = "binary data" if b"\x00" in text or not _is_utf8(text) else "no JSON object in the first lines"
    raise _undetectable(path, why)


def _classify(path: Path, doc: dict[str, Any]) -> str:
    if "flywheel_spool" in doc:
        return "spool"
    if set(doc) == NVIDIA_KEYS:
        return "nvidia"
    if "custom_id" in doc:
        response = doc.get("response")
        if (isinstance(response, dict) and "body" in response) or doc.get("error") is not None:
            return "openai_batch"
        if "body" in doc:
            raise SourceError(
                f"{path}: is an OpenAI Batch API input file (requests only); read its output file"
                " with --format openai_batch"
            )
    if "request" in doc:
        return "openai"
    if doc.get("type") in LANGFUSE_TYPES or any(key in doc for key in LANGFUSE_KEYS):
        return "langfuse"
    keys = ", ".join(sorted(doc)[:12]) or "none"
    raise _undetectable(path, f"unknown schema, first record has keys: {keys}")


def _parquet_kind(path: Path) -> str:
    try:
        names = set(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as exc:
        raise _undetectable(path, f"unreadable Parquet footer: {exc}") from None
    return "langfuse" if "type" in names and names & {"input", "output"} else "parquet"


def _head_lines(path: Path) -> list[bytes]:
    """Up to SNIFF_LINES non-blank lines from the first SNIFF_BYTES (gzip-aware, truncation-safe)."""
    lines: list[bytes] = []
    budget = SNIFF_BYTES
    try:
        with open_binary(path) as handle:
            while budget > 0 and len(lines) < SNIFF_LINES:
                line = handle.readline(budget)
                if not line:
                    break
                budget -= len(line)
                if line.strip():
                    lines.append(line)
    except (EOFError, OSError):
        pass  # a truncated or corrupt gzip: judge by what could be read
    return lines


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(data) - 4  # a multi-byte character cut by the sniff limit is fine
    return True


def _undetectable(path: Path, why: str) -> SourceError:
    return SourceError(f"{path}: cannot detect the log format ({why}); pass --format")


def known_suffixes() -> tuple[str, ...]:
    """File suffixes some registered connector reads (used when expanding directories)."""
    suffixes = set(KNOWN_SUFFIXES)
    for registered in REGISTRY.values():
        suffixes.update(registered.suffixes)
    return tuple(sorted(suffixes))


def resolve_paths(patterns: Iterable[str | Path]) -> list[Path]:
    """Files named by `patterns`: files as given, directories recursively (sorted, known suffixes
    only, hidden entries skipped), globs (`**` allowed) expanded. A pattern matching nothing fails."""
    suffixes = known_suffixes()
    found: dict[Path, None] = {}  # ordered and de-duplicated
    for pattern in patterns:
        text = str(pattern)
        path = Path(text).expanduser()
        if path.is_file():
            found.setdefault(path, None)
            continue
        if path.is_dir():
            files = _walk(path, suffixes)
            if not files:
                raise SourceError(f"{path}: directory holds no log files ({', '.join(suffixes)})")
            found.update(dict.fromkeys(files))
            continue
        if not any(char in text for char in "*?["):
            raise SourceError(f"{text}: no such file or directory")
        matches: list[Path] = []
        for match in sorted(glob.glob(str(path), recursive=True)):
            hit = Path(match)
            if hit.is_file():
                matches.append(hit)
            elif hit.is_dir():
                matches.extend(_walk(hit, suffixes))
        if not matches:
            raise SourceError(f"{text}: matches no files")
        found.update(dict.fromkeys(matches))
    return list(found)


def _walk(directory: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(
        p for p in directory.rglob("*")
        if p.is_file() and p.name.lower().endswith(suffixes)
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )  # fmt: skip
