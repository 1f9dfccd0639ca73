"""`POST /v1/feedback`: a person's verdict on one served answer, durable before the 200.

Body: {"request_id" (the x-request-id of the call), "score" (a number in [-1, 1], or "up"/"down",
"thumbs_up"/"thumbs_down", true/false), "correction"? (the right answer: a label, JSON text or an
object), "comment"?}. Authenticated like chat calls. The server never opens the warehouse, so it
cannot know whether the request id exists: it accepts any, and ingest reports those that match no
call (flywheel/feedback.py joins them to their interaction).

Feedback lines go to their own rotating files, `<spool dir>/.feedback/feedback-<UTC>.jsonl` (hidden
from traffic ingestion: a feedback line is not a call), written and fsynced like the capture spool.
"""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path
from typing import Any

from flywheel.serve.responses import ApiError

FEEDBACK_VERSION = 1
FEEDBACK_DIR = ".feedback"
FEEDBACK_PREFIX = "feedback"
MAX_TEXT_CHARS = 20_000
UP = frozenset({"up", "thumbs_up", "thumbsup", "+1", "positive", "good", "👍"})
DOWN = frozenset({"down", "thumbs_down", "thumbsdown", "-1", "negative", "bad", "👎"})


def feedback_dir(spool_directory: Path) -> Path:
    return spool_directory / FEEDBACK_DIR


def read_score(value: Any) -> float:
    """-1..1 from a number, a thumbs word or a boolean; ApiError(400) otherwise."""
    if isinstance(value, bool):
        return 1.0 if value else -1.0
    if isinstance(value, int | float) and math.isfinite(value) and -1 <= value <= 1:
        return float(value)
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in UP:
            return 1.0
        if word in DOWN:
            return -1.0
    raise ApiError(400, "'score' must be a number in [-1, 1] or 'up'/'down' (thumbs)", param="score")


def feedback_record(payload: Any, client_id: str | None, now: float | None = None) -> dict[str, Any]:
    """The spool line for one feedback body; ApiError(400) naming the bad field."""
    if not isinstance(payload, dict):
        raise ApiError(400, "request body must be a JSON object")
    request_id = payload.get("request_id")
    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > 200:
        raise ApiError(400, "'request_id' is required: the x-request-id of the call", param="request_id")
    correction = payload.get("correction")
    if correction is not None and not isinstance(correction, str | dict | list):
        raise ApiError(400, "'correction' must be text or a JSON object", param="correction")
    comment = payload.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise ApiError(400, "'comment' must be text", param="comment")
    for name, value in (("correction", correction), ("comment", comment)):
        if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
            raise ApiError(400, f"'{name}' is over {MAX_TEXT_CHARS} characters", param=name)
    return {
        "flywheel_feedback": FEEDBACK_VERSION,
        "id": uuid.uuid4().hex[:24],
        "request_id": request_id.strip(),
        "score": read_score(payload.get("score")),
        "correction": correction,
        "comment": comment,
        "client_id": client_id,
        "ts": time.time() if now is None else now,
    }
