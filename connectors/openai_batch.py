"""OpenAI Batch API output files (JSONL, plain or gzip), joined with their batch input file.

Output lines (the input units of this connector):

    {"id": "batch_req_...", "custom_id": "...",
     "response": {"status_code": 200, "request_id": "...", "body": <ChatCompletion>} | null,
     "error": null | {"code": ..., "message": ...}}

The requests are not in the output: they live in the batch INPUT file, lines
`{"custom_id", "method", "url", "body": <chat.completions.create payload>}`. The input file is found:
  1. from `ctx.mapping["batch_input"]` (a path; relative paths are tried against the output's folder);
  2. else the output's name with "output" replaced by "input" (`batch_x_output.jsonl` ->
     `batch_x_input.jsonl`), if that sibling exists and looks like a batch input file;
  3. else the only sibling file in the same folder (`*.jsonl`, `*.jsonl.gz`) whose first JSON object
     (within the first 5 non-blank lines) has "custom_id" and a "body" holding "messages". Names
     containing "input" are preferred; several equally good candidates are an error (use the mapping).
No input file at all is a SourceError: without requests there is nothing to learn from.

The input is indexed as custom_id -> byte offset (first occurrence wins), so memory grows with the
number of requests, not their size; each request is read back lazily when its output line comes.
A gzip input is decompressed once to a temporary file so that seeking stays cheap.

A line with status_code >= 400 or a non-null "error" becomes an Interaction with status "error"
(response {"error": ...}), not a rejection: failures are traffic too. An output line whose custom_id
has no request in the input is quarantined as "batch_request_missing". The workload comes from the
request body's metadata.workload_id, else from ctx.workload_id (the default for the file).
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import orjson

from connectors.base import (
    Item,
    ReadContext,
    RecordError,
    SourceError,
    connector,
    ensure_serializable,
    iter_lines,
    open_binary,
    parse_json_line,
    raw_text,
)
from connectors.openai_jsonl import build_interaction
from flywheel.records import Interaction, Rejected

NAME = "openai_batch"
SNIFF_BYTES = 1024 * 1024
SNIFF_LINES = 5
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")


@connector(NAME, suffixes=JSONL_SUFFIXES)
def read_openai_batch(path: Path, ctx: ReadContext) -> Iterator[Item]:
    """OpenAI Batch API output lines joined with the requests of the batch input file."""
    if is_batch_input(path):
        raise SourceError(f"{path}: is a Batch API input file (requests only); read its output file")
    # Found before the first item, so a missing input fails the file cleanly instead of midway.
    with _RequestIndex(find_batch_input(path, ctx)) as requests:
        for ref, line in iter_lines(path, NAME):
            if isinstance(line, Rejected):
                yield line
                continue
            doc = parse_json_line(ref, line, NAME)
            if isinstance(doc, Rejected):
                yield doc
                continue
            try:
                yield ensure_serializable(_from_output(doc, requests, ref, ctx))
            except RecordError as exc:
                yield Rejected(NAME, ref, exc.reason, raw_text(line), str(exc))


def _from_output(doc: dict[str, Any], requests: _RequestIndex, ref: str, ctx: ReadContext) -> Interaction:
    custom_id = doc.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise RecordError("wrong_schema", "no 'custom_id' (not a Batch API output line)")
    body = requests.get(custom_id)
    if body is None:
        raise RecordError("batch_request_missing", f"custom_id {custom_id!r} not in {requests.path}")
    response = doc.get("response")
    error = doc.get("error")
    if response is not None and not isinstance(response, dict):
        raise RecordError("bad_response", "'response' must be an object or null")
    response = response or {}
    status_code = response.get("status_code")
    if status_code is not None and (isinstance(status_code, bool) or not isinstance(status_code, int)):
        raise RecordError(
            "bad_response", f"'response.status_code' must be an integer, got {status_code!r:.40}"
        )
    raw_response: Any = response.get("body")
    if error:
        raw_response = {"error": error}
    elif status_code is not None and status_code >= 400:
        # Failed requests carry {"error": {...}} in the body; keep it, else synthesise one from the code.
        if not (isinstance(raw_response, dict) and raw_response.get("error")):
            raw_response = {"error": {"message": f"HTTP {status_code}", "code": status_code}}
    elif raw_response is None:
        raise RecordError("missing_response", "output line has neither response.body nor error")
    body_meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    metadata: dict[str, Any] = {**body_meta, "batch_custom_id": custom_id}
    for key, value in (("batch_output_id", doc.get("id")), ("batch_request_id", response.get("request_id"))):
        if value is not None:
            metadata[key] = value
    if status_code is not None:
        metadata["http_status"] = status_code
    return build_interaction({"metadata": metadata}, body, raw_response, ref, ctx, NAME)


class _RequestIndex:
    """custom_id -> byte offset of the input line; request bodies are read back on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offsets: dict[str, int] = {}
        self._handle: IO[bytes] | None = None
        self._stack = ExitStack()

    def __enter__(self) -> _RequestIndex:
        try:
            self._handle = self._open()
            self._build()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _open(self) -> IO[bytes]:
        handle = self._stack.enter_context(open_binary(self.path))
        if not isinstance(handle, gzip.GzipFile):
            return handle
        # Seeking backwards in gzip re-decompresses from the start: spill it to a plain file once.
        spill = self._stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed by the stack)
        # A truncated gzip keeps the requests before the cut (a partial last line won't parse).
        with contextlib.suppress(EOFError, OSError):
            shutil.copyfileobj(handle, spill)
        spill.seek(0)
        return spill

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def _build(self) -> None:
        assert self._handle is not None
        offset = 0
        for line in iter(self._handle.readline, b""):
            custom_id = _custom_id(line)
            # The first occurrence wins: the Batch API rejects duplicate custom_ids, so a repeat is
            # a damaged file and the first line is the one the output most likely answered.
            if custom_id is not None and custom_id not in self._offsets:
                self._offsets[custom_id] = offset
            offset += len(line)

    def get(self, custom_id: str) -> dict[str, Any] | None:
        offset = self._offsets.get(custom_id)
        if offset is None or self._handle is None:
            return None
        self._handle.seek(offset)
        doc = orjson.loads(self._handle.readline())  # parsed fine while indexing
        return doc["body"]


def _custom_id(line: bytes) -> str | None:
    """The custom_id of a usable input line (object with a request body), else None."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("body"), dict):
        return None
    custom_id = doc.get("custom_id")
    return custom_id if isinstance(custom_id, str) and custom_id else None


def is_batch_input(path: Path) -> bool:
    """True when the first JSON object among the first SNIFF_LINES non-blank lines is a batch input
    line (custom_id + body with messages); a damaged first line does not hide the file's nature."""
    budget, seen = SNIFF_BYTES, 0
    try:
        with open_binary(path) as handle:
            while budget > 0 and seen < SNIFF_LINES:
                line = handle.readline(budget)
                if not line:
                    return False
                budget -= len(line)
                if not line.strip():
                    continue
                seen += 1
                try:
                    doc = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(doc, dict):
                    body = doc.get("body")
                    return "custom_id" in doc and isinstance(body, dict) and "messages" in body
    except (OSError, EOFError):
        pass
    return False


def find_batch_input(path: Path, ctx: ReadContext) -> Path:
    """The batch input file for an output file (rule in the module docstring)."""
    given = ctx.mapping.get("batch_input")
    if given:
        candidate = Path(given)
        if not candidate.is_absolute() and not candidate.exists():
            candidate = path.parent / candidate
        if not candidate.is_file():
            raise SourceError(f"{path}: batch input {given} (mapping batch_input) does not exist")
        return candidate
    paired = path.with_name(path.name.replace("output", "input"))
    if paired != path and paired.is_file() and is_batch_input(paired):
        return paired
    siblings = sorted(
        p for p in path.parent.iterdir()
        if p != path and p.is_file() and p.name.lower().endswith(JSONL_SUFFIXES) and is_batch_input(p)
    )  # fmt: skip
    named = [p for p in siblings if "input" in p.name.lower()]
    candidates = named or siblings
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise SourceError(
            f"{path}: no Batch API input file found next to it (lines with custom_id and body.messages);"
            " pass the mapping batch_input=<path>"
        )
    names = ", ".join(p.name for p in candidates)
    raise SourceError(f"{path}: several Batch API input files ({names}); pass the mapping batch_input=<path>")
