"""Row-level steps between the row checks and the snapshot: duplicates, slices and caps.

Duplicates: every interaction joins its exact/near-duplicate group (the group is what keeps a family
in one split), and within a group one representative is kept per distinct answer, the earliest that
passed the row checks. Two near-identical inputs with different answers are not redundant: they are a
contrast the student must learn (or a labeling conflict worth seeing), so both stay, together in one
split. Chat answers always differ, so chat keeps one representative per group.

A duplicate is dropped from training, never its information: the same request from another client or
day may carry a gold label or feedback the representative lacks. A gold label (about the input) moves
to every representative with the same exact input that has none; negative feedback on a copy of the
same input and answer applies to the representative (rejected, or downweighted under
`curation.feedback.action: downweight`). Near (not exact) duplicates pass nothing on: they are
different inputs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from flywheel.config import WorkloadConfig
from flywheel.quality.debias import (
    UNKNOWN,
    CapItem,
    Distribution,
    apply_caps,
    below_production_share,
    distribution,
    production_minimum,
)
from flywheel.quality.dedup import DuplicateGroups, duplicate_groups
from flywheel.quality.rows import CurationRow
from flywheel.quality.topics import topic_clusters

SLICE_KIND = {"classification": "label", "tool_call": "tool", "extraction": "topic", "chat": "topic"}


def mark_duplicates(
    rows: list[CurationRow], workload: WorkloadConfig, index_path: Path | None = None
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Set dup_group on every grouped row, reject the redundant ones and merge what they carry into
    the kept representatives; returns counts and the calibration pairs (nearest the threshold).
    `index_path`: the persistent near-duplicate index (`dedup_index.py`) to reuse and update."""
    config = workload.curation
    groups = duplicate_groups(
        [row.input_text for row in rows],
        threshold=config.near_dup_threshold,
        shingle_size=config.shingle_size,
        num_perm=config.num_perm,
        near=config.dedup,
        common_share=config.near_dup_common_share,
        index_path=index_path,
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
            first = representatives.setdefault(_answer_key(row, workload), member)
            if first == member:
                continue
            exact = groups.exact_key[member] == groups.exact_key[first]
            reason = "exact_duplicate" if exact else "near_duplicate"
            row.reject(reason, f"{reason.replace('_', ' ')} of {rows[first].source_ref}")
            counts[reason] += 1
        counts["kept_contrasts"] += len(representatives) - 1 if representatives else 0
        counts.update(_merge_into_representatives(rows, members, groups, representatives, workload))
    return dict(counts), _calibration(rows, groups, config.near_dup_threshold)


def _answer_key(row: CurationRow, workload: WorkloadConfig) -> str:
    return "" if workload.task == "chat" else (row.label or "")


def _merge_into_representatives(
    rows: list[CurationRow],
    members: list[int],
    groups: DuplicateGroups,
    representatives: dict[str, int],
    workload: WorkloadConfig,
) -> Counter[str]:
    """Gold labels and negative feedback of dropped copies, moved onto the kept representatives."""
    merged: Counter[str] = Counter()
    kept = set(representatives.values())
    for member in members:
        if member in kept:
            continue
        copy = rows[member]
        for index in kept:
            rep = rows[index]
            if groups.exact_key[index] != groups.exact_key[member]:
                continue  # a near duplicate is another input: its label is not this one's
            if copy.gold is not None and rep.gold is None:
                rep.gold = copy.gold
                merged["gold_merged"] += 1
            if (
                _negative(copy)
                and rep.kept
                and rep.weight == 1.0
                and _answer_key(rep, workload) == _answer_key(copy, workload)
            ):
                _apply_negative(rep, copy, workload)
                merged["feedback_merged"] += 1
    return merged


def _negative(row: CurationRow) -> bool:
    return row.reason == "negative_feedback" or row.weight < 1.0


def _apply_negative(rep: CurationRow, copy: CurationRow, workload: WorkloadConfig) -> None:
    rule = workload.curation.feedback
    if rule is not None and rule.action == "downweight":
        rep.weight = rule.weight
        rep.outcome = rep.outcome or copy.outcome
        return
    rep.reject(
        "negative_feedback", f"a duplicate of this request and answer ({copy.source_ref}) was rated down"
    )


def _calibration(rows: list[CurationRow], groups: DuplicateGroups, threshold: float) -> list[dict[str, Any]]:
    """The candidate pairs nearest the near-dup threshold, on either side, with their texts."""
    return [
        {
            "score": pair.score,
            "threshold": threshold,
            "merged": pair.merged,
            "why": pair.why,
            "a": {"source_ref": rows[pair.a].source_ref, "input": rows[pair.a].input_text[:200]},
            "b": {"source_ref": rows[pair.b].source_ref, "input": rows[pair.b].input_text[:200]},
        }
        for pair in groups.calibration
    ]


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


def production_counts(rows: list[CurationRow], workload: WorkloadConfig) -> dict[str, int]:
    """Rows per slice in the traffic itself (duplicates and rejected rows with a readable answer count:
    every call is traffic); topic slices exist only on the curated candidates."""
    kind = SLICE_KIND[workload.task]
    if kind == "label":
        return dict(Counter(row.label for row in rows if row.label is not None))
    if kind == "tool":
        readable = [row.parsed for row in rows if row.parsed is not None and row.parsed.reason is None]
        return dict(Counter(p.tool_names[0] if p.tool_names else "none" for p in readable))
    return dict(Counter(row.slice for row in rows if row.slice is not None))


def cap_pool(
    pool: list[CurationRow], workload: WorkloadConfig, production: dict[str, int] | None = None
) -> tuple[dict[str, Distribution], ...]:
    """Apply the slice and client caps to the training pool; (before, after) distributions.

    Unless `curation.cap_below_production_share`, no slice cap cuts a slice below its share of the
    `production` traffic (a tool-call agent's text replies are real traffic, not skew)."""
    config = workload.curation
    before = _distributions(pool, workload)
    minimum = None
    if production and not config.cap_below_production_share:
        minimum = production_minimum(production, len(pool))
    items = [CapItem(row.interaction_id, row.slice or UNKNOWN, row.client_id or UNKNOWN) for row in pool]
    removed = apply_caps(
        items,
        seed=config.seed,
        max_slice_share=config.max_slice_share,
        max_per_slice=config.max_per_slice,
        max_client_share=config.max_client_share,
        floor=config.min_slice_count,
        slice_minimum=minimum,
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


def production_report(production: dict[str, int], after: Distribution, capped_below: bool) -> dict[str, Any]:
    """The traffic's slice shares, and every slice the curated pool holds below its share (a warning)."""
    total = sum(production.values())
    below = below_production_share(production, after)
    note = " (curation.cap_below_production_share is on)" if capped_below else ""
    warnings = [
        f"slice {name!r} is {v['share_after']:.1%} of the curated pool but {v['production_share']:.1%} "
        f"of the traffic{note}"
        for name, v in below.items()
    ]
    return {
        "production": {k: round(n / total, 4) for k, n in sorted(production.items())} if total else {},
        "below_production_share": below,
        "warnings": warnings,
    }


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
