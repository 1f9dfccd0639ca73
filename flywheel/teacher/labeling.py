"""Entry points of the label stage: `label_examples` (replay | relabel | synthesize) and
`synthesize_for_slices`, each an async core plus a sync wrapper.

The sync wrappers run on the teacher client's own event loop (see TeacherClient.run_sync), so a
client can serve many sync calls; do not also await the async cores with that client on another loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from flywheel.config import WorkloadConfig
from flywheel.pricing import PriceCatalog
from flywheel.records import Example
from flywheel.store.db import Warehouse
from flywheel.teacher.client import TeacherClient
from flywheel.teacher.relabel import Progress, open_run, relabel_examples
from flywheel.teacher.replay import replay_labels
from flywheel.teacher.runs import LabelReport, new_run_id
from flywheel.teacher.synthesize import NearDuplicates, seed_text, synthesize_slice

T = TypeVar("T")
Mode = Literal["replay", "relabel", "synthesize"]
MODES = ("replay", "relabel", "synthesize")


async def alabel_examples(
    examples: Sequence[Example],
    workload: WorkloadConfig,
    mode: Mode,
    *,
    client: TeacherClient | None,
    warehouse: Warehouse,
    prices: PriceCatalog,
    run_id: str | None = None,
    max_usd: float | None = None,
    progress: Progress = None,
    snapshot_id: str | None = None,
    n_per_slice: int = 20,
) -> LabelReport:
    """Label `examples`. synthesize treats them as seeds grouped by slice (see synthesize_for_slices)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    run_id = run_id or new_run_id(workload.id, mode)
    if mode == "replay":
        return await asyncio.to_thread(
            replay_labels,
            examples,
            workload,
            warehouse=warehouse,
            run_id=run_id,
            snapshot_id=snapshot_id,
            progress=progress,
        )
    if client is None:
        raise ValueError(f"{mode} needs a live teacher client (teacher.base_url)")
    if mode == "synthesize":
        seeds: dict[str, list[Example]] = {}
        for example in examples:
            seeds.setdefault(example.slice or "all", []).append(example)
        existing = [seed_text(e) for e in examples]
        return await asynthesize_for_slices(
            seeds,
            n_per_slice,
            workload,
            client=client,
            warehouse=warehouse,
            prices=prices,
            run_id=run_id,
            existing_texts=existing,
            max_usd=max_usd,
            progress=progress,
            snapshot_id=snapshot_id,
        )
    report = LabelReport(run_id, workload.id, mode)
    async with open_run(client, warehouse, prices, report, max_usd=max_usd, snapshot_id=snapshot_id) as run:
        await relabel_examples(run, examples, workload, progress)
    return report


def label_examples(
    examples: Sequence[Example],
    workload: WorkloadConfig,
    mode: Mode,
    *,
    client: TeacherClient | None,
    warehouse: Warehouse,
    prices: PriceCatalog,
    run_id: str | None = None,
    max_usd: float | None = None,
    progress: Progress = None,
    snapshot_id: str | None = None,
    n_per_slice: int = 20,
) -> LabelReport:
    """Sync wrapper of `alabel_examples`."""
    coro = alabel_examples(
        examples,
        workload,
        mode,
        client=client,
        warehouse=warehouse,
        prices=prices,
        run_id=run_id,
        max_usd=max_usd,
        progress=progress,
        snapshot_id=snapshot_id,
        n_per_slice=n_per_slice,
    )
    return run_blocking(coro, client)


async def asynthesize_for_slices(
    seeds: Mapping[str, list[Example]],
    n_per_slice: int,
    workload: WorkloadConfig,
    *,
    client: TeacherClient,
    warehouse: Warehouse,
    prices: PriceCatalog,
    run_id: str | None = None,
    existing_texts: Iterable[str] = (),
    max_usd: float | None = None,
    progress: Progress = None,
    snapshot_id: str | None = None,
) -> LabelReport:
    """Up to n_per_slice new, labeled, synthetic examples per rare slice (from its seed examples)."""
    if n_per_slice < 1:
        raise ValueError("n_per_slice must be at least 1")
    report = LabelReport(run_id or new_run_id(workload.id, "synthesize"), workload.id, "synthesize")
    usable = {name: list(examples) for name, examples in seeds.items() if examples}
    seed_texts = [seed_text(e) for examples in usable.values() for e in examples]
    seen = await asyncio.to_thread(NearDuplicates, [*existing_texts, *seed_texts])
    opened = open_run(client, warehouse, prices, report, max_usd=max_usd, snapshot_id=snapshot_id)
    async with opened as run, asyncio.TaskGroup() as group:
        for name, examples in usable.items():
            group.create_task(synthesize_slice(run, workload, name, examples, n_per_slice, seen, progress))
    return report


def synthesize_for_slices(
    seeds: Mapping[str, list[Example]],
    n_per_slice: int,
    workload: WorkloadConfig,
    *,
    client: TeacherClient,
    warehouse: Warehouse,
    prices: PriceCatalog,
    run_id: str | None = None,
    existing_texts: Iterable[str] = (),
    max_usd: float | None = None,
    progress: Progress = None,
    snapshot_id: str | None = None,
) -> LabelReport:
    """Sync wrapper of `asynthesize_for_slices`."""
    coro = asynthesize_for_slices(
        seeds,
        n_per_slice,
        workload,
        client=client,
        warehouse=warehouse,
        prices=prices,
        run_id=run_id,
        existing_texts=existing_texts,
        max_usd=max_usd,
        progress=progress,
        snapshot_id=snapshot_id,
    )
    return run_blocking(coro, client)


def run_blocking(coro: Coroutine[Any, Any, T], client: TeacherClient | None) -> T:
    """Run on the client's loop; without a client, in this thread (or a helper one inside a loop)."""
    if client is not None:
        return client.run_sync(coro)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]
