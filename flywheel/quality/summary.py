"""The counts a curation report shows, filled in from the rows once every verdict is known."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from flywheel.config.curation import FeedbackConfig
from flywheel.datasets.snapshots import SnapshotRow
from flywheel.quality.pruning import PromptTemplate
from flywheel.quality.rows import CurationRow

if TYPE_CHECKING:
    from flywheel.curate import CurationReport


def summarize(
    report: CurationReport,
    rows: list[CurationRow],
    snapshot_rows: list[SnapshotRow],
    template: PromptTemplate | None,
    quality: list[Any],
    quarantined: int,
    topic_terms: dict[str, list[str]],
) -> None:
    report.n_in = len(rows)
    report.rejected = dict(Counter(row.reason for row in rows if row.reason).most_common())
    report.splits = {
        split: sum(1 for r in snapshot_rows if r.example.split == split) for split in ("train", "val", "eval")
    }
    report.pii = _total_pii(rows)
    kept = [row for row in rows if row.kept]
    report.pii_out = _total_pii(kept)
    before = sum(row.tokens_before for row in kept) / len(kept) if kept else 0.0
    after = sum(row.tokens_after for row in kept) / len(kept) if kept else 0.0
    report.tokens_per_example = {"before": round(before, 1), "after": round(after, 1),
                                 "saved_share": round(1 - after / before, 4) if before else 0.0}  # fmt: skip
    if template is not None:
        report.template = {"template_id": template.template_id, "n_static_tokens": template.n_static_tokens}
    if topic_terms:
        report.slices["topics"] = topic_terms
    failed = sum(1 for q in quality if q.success is False)
    report.expectations = {
        "batches": len({q.batch_id for q in quality}),
        "evaluated": len(quality),
        "failed": failed,
    }
    report.quarantined_at_ingest = quarantined


def summarize_feedback(report: CurationReport, rows: list[CurationRow], rule: FeedbackConfig | None) -> None:
    """Rows kept at a lower weight, and what the configured feedback field held (a path that matches
    no row shows as `with_value: 0`)."""
    report.downweighted = dict(Counter("negative_feedback" for row in rows if row.kept and row.weight < 1))
    if rule is not None:
        found = [row.outcome for row in rows if row.outcome is not None]
        report.feedback = {"field": rule.field, "action": rule.action, "with_value": len(found),
                           "negative": sum(o.negative for o in found)}  # fmt: skip


def _total_pii(rows: list[CurationRow]) -> dict[str, int]:
    """PII values per type over `rows`, in order of first appearance (one Counter, not one a row)."""
    total: Counter[str] = Counter()
    for row in rows:
        if row.pii:
            total.update(row.pii)
    return {kind: n for kind, n in total.items() if n > 0}
