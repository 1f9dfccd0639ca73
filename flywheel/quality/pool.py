"""Row-level steps between the row checks and the snapshot: duplicates, slices and caps.

Duplicates: every interaction joins its exact/near-duplicate group (the group is what keeps a family
in one split), and within a group one representative is kept per distinct answer, the earliest that
passed the row checks. Two near-identical inputs with different answers are not redundant: they are a
contrast the student must learn (or a labeling conflict worth seeing), so both stay, together in one
split. Chat answers always differ, so chat keeps one representative per group.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from flywheel.config import WorkloadConfig
from flywheel.quality.debias import UNKNOWN, CapItem, Distribution, apply_caps, distribution
from flywheel.quality.dedup import duplicate_groups
from flywheel.quality.rows import CurationRow
from flywheel.quality.topics import topic_clusters

SLICE_KIND = {"classification": "label", "tool_call": "tool", "extraction": "topic", "chat": "topic"}


def mark_duplicates(rows: list[CurationRow], workload: WorkloadConfig) -> dict[str, int]:
    """Set dup_group on every grouped row and reject the redundant ones; returns counts."""
    config = workload.curation
    groups = duplicate_groups(
        [row.input_text for row in rows],
        threshold=config.near_dup_threshold,
        shingle_size=config.shingle_size,
        num_perm=config.num_perm,
        near=config.dedup,
    )
    counts: Counter[str] = Counter(groups=len(groups.groups), near_pairs=groups.near_pairs)
    for members in groups.groups if config.dedup else []:
        group_id = "dg-" + rows[members[0]].interaction_id[:16]
        representatives: dict[str, int] = {}
        for member in members:
            row = rows[member]
            row.dup_group = group_id
            if not row.kept:
                continue
            answer = "" if workload.task == "chat" else (row.label or "")
            first = representatives.setdefault(answer, member)
            if first == member:
                continue
            exact = groups.exact_key[member] == groups.exact_key[first]
            reason = "exact_duplicate" if exact else "near_duplicate"
            row.reject(reason, f"{reason.replace('_', ' ')} of {rows[first].source_ref}")
            counts[reason] += 1
        counts["kept_contrasts"] += len(representatives) - 1 if representatives else 0
    return dict(counts)


def assign_slices(rows: list[CurationRow], workload: WorkloadConfig) -> dict[str, list[str]]:
    """Slice per row (label, first tool name or "none", topic); returns the topics' top terms."""
    kind = SLICE_KIND[workload.task]
    if kind == "label":
        for row in rows:
            row.slice = row.label or UNKNOWN
        return {}
    if kind == "tool":
        for row in rows:
            names = row.parsed.tool_names if row.parsed else []
            row.slice = names[0] if names else "none"
        return {}
    config = workload.curation
    topics = topic_clusters([row.input_text for row in rows], k=config.topic_clusters, seed=config.seed)
    for row, topic in zip(rows, topics.assignments, strict=True):
        row.slice = topic
    return topics.terms


def reject_eval_neighbours(pool: list[CurationRow], eval_groups: set[str]) -> int:
    """A training row whose dup group has an eval member would leak it: reject it."""
    leaked = 0
    for row in pool:
        if row.dup_group is not None and row.dup_group in eval_groups:
            row.reject("near_duplicate_of_eval", f"dup group {row.dup_group} has an eval example")
            leaked += 1
    return leaked


def cap_pool(pool: list[CurationRow], workload: WorkloadConfig) -> tuple[dict[str, Distribution], ...]:
    """Apply the slice and client caps to the training pool; (before, after) distributions."""
    config = workload.curation
    before = _distributions(pool, workload)
    items = [CapItem(row.interaction_id, row.slice or UNKNOWN, row.client_id or UNKNOWN) for row in pool]
    removed = apply_caps(
        items,
        seed=config.seed,
        max_slice_share=config.max_slice_share,
        max_per_slice=config.max_per_slice,
        max_client_share=config.max_client_share,
        floor=config.min_slice_count,
    )
    for row in pool:
        reason = removed.get(row.interaction_id)
        if reason is not None:
            what = f"slice {row.slice!r}" if reason == "slice_cap" else f"client {row.client_id or UNKNOWN!r}"
            row.reject(reason, f"{what} is over its cap")
    return before, _distributions([row for row in pool if row.kept], workload)


def _distributions(rows: list[CurationRow], workload: WorkloadConfig) -> dict[str, Distribution]:
    return {
        "slice": distribution((row.slice or UNKNOWN for row in rows), known_slices(workload)),
        "client": distribution(row.client_id or UNKNOWN for row in rows),
    }


def known_slices(workload: WorkloadConfig) -> list[str]:
    """Slices that exist even with no example, so a label or tool never seen is flagged rare."""
    if workload.task == "classification":
        return list(workload.labels or [])
    if workload.task == "tool_call" and workload.tools:
        names = [(t.get("function") or {}).get("name") for t in workload.tools if isinstance(t, dict)]
        return [name for name in names if isinstance(name, str)] + ["none"]
    return []


def distribution_report(
    kind: str, before: Distribution, after: Distribution, min_count: int | None
) -> dict[str, Any]:
    capped = {
        name: {"before": n, "after": after.counts.get(name, 0)}
        for name, n in before.counts.items()
        if after.counts.get(name, 0) < n
    }
    report: dict[str, Any] = {
        "kind": kind,
        "before": before.as_dict(),
        "after": after.as_dict(),
        "capped": capped,
    }
    if min_count is not None:
        report["rare"] = sorted(name for name, n in after.counts.items() if n < min_count)
    return report


def slice_stat_rows(
    before: dict[str, Distribution], after: dict[str, Distribution], workload: WorkloadConfig
) -> list[dict[str, Any]]:
    """The slice_stats rows: one per slice of each kind (the task's slice kind, and client)."""
    min_count = workload.curation.min_slice_count
    rows = []
    for kind, label in (("slice", SLICE_KIND[workload.task]), ("client", "client")):
        for name in sorted(set(before[kind].counts) | set(after[kind].counts)):
            n_after = after[kind].counts.get(name, 0)
            rows.append(
                {
                    "slice_kind": label,
                    "slice": name,
                    "n_before": before[kind].counts.get(name, 0),
                    "n_after": n_after,
                    "share_before": before[kind].share(name),
                    "share_after": after[kind].share(name),
                    "rare": kind == "slice" and n_after < min_count,
                }
            )
    return rows
