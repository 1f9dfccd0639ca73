"""The one way Flywheel builds the OpenAI SDK client for a teacher config.

Labeling/judging (flywheel.teacher.client) and `flywheel serve`'s fallback proxy (flywheel.serve.teacher)
both talk to the teacher through the client built here, so a base URL, headers, timeout and key reach
the endpoint the same way. `TeacherConfig.max_retries` means the same in both: retries after the first
attempt of a retryable failure (429, 5xx, timeouts), honouring Retry-After. Who runs them differs for a
reason: the serve proxy leaves them to the SDK (one request, one caller waiting); the labeling client
runs them itself (`sdk_retries=False`) because a 429 must pause every queued call of a batch and a retry
must be checked against the run's budget and circuit breaker, which the SDK cannot see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from flywheel.config import TeacherConfig


def teacher_openai_client(
    teacher: TeacherConfig, api_key: str, *, sdk_retries: bool, http_client: Any = None
) -> AsyncOpenAI:
    """An AsyncOpenAI for `teacher`; with `sdk_retries` the SDK retries up to teacher.max_retries."""
    from openai import AsyncOpenAI

    return AsyncOpenAI(
        api_key=api_key,
        base_url=teacher.base_url,
        default_headers=teacher.headers or None,
        timeout=teacher.timeout_s,
        max_retries=teacher.max_retries if sdk_retries else 0,
        http_client=http_client,
    )
