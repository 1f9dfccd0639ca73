"""A circuit breaker for teacher runs: stop asking an endpoint that is down instead of hammering it.

Each call is already retried (`TeacherConfig.max_retries`, with backoff and Retry-After). When that
many calls in a row still fail for a reason that says the endpoint itself is unusable (unreachable,
timing out, rate limiting, erroring, answering garbage, refusing the key), the run stops asking: the
items left are skipped, not quarantined, so the next run labels them once the teacher is back.
Without it, a dead endpoint costs every remaining item its full retry schedule (hours on a large
snapshot) and files every one of them as a failure.
"""

from __future__ import annotations

from flywheel.teacher.client import TeacherCallError

UNAVAILABLE = frozenset(
    {"connection", "timeout", "rate_limited", "server_error", "auth", "malformed_response"}
)


class TeacherUnavailable(TeacherCallError):
    """The breaker is open: this run no longer calls the teacher."""

    def __init__(self, detail: str) -> None:
        super().__init__("teacher_unavailable", detail)


class Breaker:
    """Trips on `attempts` failed attempts in a row, or `calls` calls in a row that failed after all
    their retries. 429s count only per call: the client already paces them with one shared pause, and
    a quota that refills within the retry schedule must not stop a run."""

    def __init__(self, attempts: int, calls: int) -> None:
        self.thresholds = {"attempts": attempts, "calls": calls}
        self.streaks = {"attempts": 0, "calls": 0}
        self.last: TeacherCallError | None = None
        self.tripped = False

    @classmethod
    def for_concurrency(cls, concurrency: int) -> Breaker:
        # Concurrent calls fail together when the endpoint dies: wait for more than one wave of them.
        # 16 failed attempts in a row from an endpoint that fails 30% of the time: p = 4e-9.
        return cls(attempts=max(16, 3 * concurrency), calls=max(5, 2 * concurrency))

    def check(self) -> None:
        if self.tripped:
            raise TeacherUnavailable(self.describe())

    def succeeded(self) -> None:
        self.streaks = {"attempts": 0, "calls": 0}

    def failed(self, exc: TeacherCallError) -> None:
        """One attempt failed (called by TeacherClient.complete)."""
        if exc.reason != "rate_limited":
            self._count("attempts", exc)

    def call_failed(self, exc: TeacherCallError) -> None:
        """A call failed for good, after its retries."""
        self._count("calls", exc)

    def _count(self, streak: str, exc: TeacherCallError) -> None:
        if isinstance(exc, TeacherUnavailable):
            return
        if exc.reason not in UNAVAILABLE:
            self.streaks[streak] = 0  # a bad answer to one request says nothing about the endpoint
            return
        self.streaks[streak] += 1
        self.last = exc
        if self.streaks[streak] >= self.thresholds[streak]:
            self.tripped = True

    def describe(self) -> str:
        reason = self.last.reason if self.last else "unknown"
        streaks = ", ".join(f"{n} {name}" for name, n in self.streaks.items())
        return f"the teacher kept failing ({streaks} failed in a row, last: {reason}); stopped asking"
