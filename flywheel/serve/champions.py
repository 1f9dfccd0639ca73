"""Which student answers each workload: the registry's champions manifest, watched and hot-swapped.

The registry rewrites HOME/champions.json atomically on every promotion or rollback:
    {"<workload_id>": {"model_id", "path", "kind", "promoted_at"[, "coverage", "threshold", "claims"]}}
A champion promoted partially (flywheel/evaluate/partial.py) also carries the calibrated cascade:
`threshold`, the confidence under which its answers go to the teacher (serve.thresholds, when set for
the workload, still wins), `claims` ("tool_calls": its text answers go to the teacher too) and the
`coverage` it was promoted with.
The server never opens the warehouse; it polls this file's stat (mtime, size, inode) and, when it
changed, loads each new champion in a worker thread while the old one keeps serving, then swaps the
reference in one assignment. Requests already holding the old champion finish on it.

Each champion is loaded as a model bundle (flywheel.bundle): the student plus what turns a raw
request into its input and its output into the teacher's answer format. The bundle's routing facts
(the request model names its logs used, its prompt template) are read at once when the manifest
changes, so requests route to a workload while its student is still loading.

`lookup(workload_id)` says who may answer: a loaded champion, or the reason the teacher must:
no_champion (proxy mode), champion_missing (artifact directory gone), champion_loading (first load
still running), champion_load_failed. `wait_loaded(workload_id, timeout)` lets a call that arrives
during a load wait for it instead of failing.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from flywheel.answers import AnswerSpec
from flywheel.answers.claims import ALL, CLAIMS
from flywheel.bundle import Bundle, BundlePredictor, load_predictor, read_bundle
from flywheel.records import Predictor
from flywheel.serve.batcher import BatchObserver, DynamicBatcher

log = logging.getLogger("flywheel.serve")
Loader = Callable[[Path], Predictor]


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    model_id: str
    path: Path
    kind: str | None = None
    promoted_at: str | None = None
    threshold: float | None = None  # the calibrated confidence threshold of a partial promotion
    claims: str = ALL  # "tool_calls": a student that cannot write text claims only tool-call turns
    coverage: float | None = None  # the share of eval traffic it answered when promoted


@dataclass
class Champion:
    """A loaded student: its bundle predictor (raw request in, teacher-format answer out) behind a
    batcher."""

    workload_id: str
    entry: ManifestEntry
    predictor: BundlePredictor
    batcher: DynamicBatcher

    @property
    def bundle(self) -> Bundle:
        return self.predictor.bundle

    @property
    def model_id(self) -> str:
        return self.entry.model_id


@dataclass(frozen=True, slots=True)
class ChampionLookup:
    champion: Champion | None
    reason: str | None  # why the teacher must answer; None when `champion` is set


class ChampionWatcher:
    """Keeps `lookup()` in step with the champions manifest."""

    def __init__(
        self,
        manifest_path: str | os.PathLike[str],
        *,
        loader: Loader | None = None,
        poll_s: float = 1.0,
        max_batch: int = 16,
        max_wait_ms: float = 5.0,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.manifest_path = Path(manifest_path)
        self._loader = loader
        self.poll_s = poll_s
        self._batching: dict[str, Any] = {
            "max_batch": max_batch,
            "max_wait_ms": max_wait_ms,
            "on_batch": on_batch,
        }
        self._defaults: dict[str, Bundle] = {}
        self._signature: tuple[int, int, int] | None = None
        self._manifest: dict[str, ManifestEntry] = {}
        self._champions: dict[str, Champion] = {}
        self._bundles: dict[str, Bundle] = {}
        self._problems: dict[str, str] = {}
        self._loads: dict[str, tuple[ManifestEntry, asyncio.Task[None]]] = {}
        self._poller: asyncio.Task[None] | None = None
        self.swaps = 0

    def set_batch_observer(self, on_batch: BatchObserver | None) -> None:
        """Report every student batch (size, seconds) to `on_batch`, e.g. the server's metrics."""
        self._batching["on_batch"] = on_batch
        for champion in self._champions.values():
            champion.batcher.on_batch = on_batch

    def set_defaults(self, defaults: dict[str, Bundle]) -> None:
        """The bundle each workload's champion gets when its directory has none (its config's contract)."""
        self._defaults = dict(defaults)

    def _default(self, workload_id: str) -> Bundle:
        """A workload the server was not configured with (a bare watcher) only gets non-empty checks."""
        return self._defaults.get(workload_id) or Bundle(workload_id, AnswerSpec(task="chat"))

    def lookup(self, workload_id: str) -> ChampionLookup:
        entry = self._manifest.get(workload_id)
        if entry is None:
            return ChampionLookup(None, "no_champion")
        problem = self._problems.get(workload_id)
        if problem == "champion_missing":
            return ChampionLookup(None, problem)
        champion = self._champions.get(workload_id)
        if champion is not None:
            return ChampionLookup(champion, None)
        return ChampionLookup(None, problem or "champion_loading")

    def snapshot(self) -> dict[str, Any]:
        """Per workload: the manifest's champion, the one serving, and any problem (for /health)."""
        out = {}
        for workload_id, entry in sorted(self._manifest.items()):
            serving = self._champions.get(workload_id)
            out[workload_id] = {
                "model_id": entry.model_id,
                "serving": serving.model_id if serving else None,
                "loading": workload_id in self._loads,
                "problem": self._problems.get(workload_id),
            }
        return out

    def serving(self) -> dict[str, str]:
        """Workload -> model id of the student answering it now."""
        return {w: c.model_id for w, c in self._champions.items()}

    @property
    def ready(self) -> bool:
        """Every champion in the manifest is loaded, or failed for good (missing, failed load)."""
        return all(w in self._champions or w in self._problems for w in self._manifest)

    def bundles(self) -> dict[str, Bundle]:
        """Workload -> the bundle of its champion (known as soon as the manifest names it)."""
        return dict(self._bundles)

    async def start(self) -> None:
        await self.refresh()
        self._poller = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        tasks = [t for t in (self._poller, *(task for _, task in self._loads.values())) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._poller = None

    async def wait_loaded(self, workload_id: str | None = None, timeout: float | None = None) -> bool:
        """Wait for the loads in flight (of one workload, or all); False when `timeout` ran out."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    pending = [task for w, (_, task) in list(self._loads.items()) if workload_id in (None, w)]
                    if not pending:
                        return True
                    await asyncio.gather(*pending, return_exceptions=True)
        except TimeoutError:
            return False

    async def refresh(self) -> bool:
        """Re-read the manifest when its stat changed; returns whether it did."""
        signature = _stat_signature(self.manifest_path)
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            manifest = read_manifest(self.manifest_path) if signature else {}
        except ValueError as exc:
            log.warning("champions manifest ignored: %s", exc)
            return False
        self._apply(manifest)
        return True

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.refresh()
            except Exception:  # the watcher must outlive one bad read
                log.exception("champions manifest check failed")

    def _apply(self, manifest: dict[str, ManifestEntry]) -> None:
        for workload_id in set(self._manifest) - set(manifest):
            self._champions.pop(workload_id, None)
            self._bundles.pop(workload_id, None)
            self._problems.pop(workload_id, None)
            self._cancel_load(workload_id)
        self._manifest = manifest
        for workload_id, entry in manifest.items():
            current = self._champions.get(workload_id)
            if current is not None and current.entry == entry:
                self._problems.pop(workload_id, None)
                self._cancel_load(workload_id)
                continue
            if workload_id in self._loads and self._loads[workload_id][0] == entry:
                continue
            self._cancel_load(workload_id)
            if not entry.path.is_dir():
                log.warning("champion %s of %s: %s is missing", entry.model_id, workload_id, entry.path)
                self._problems[workload_id] = "champion_missing"
                self._champions.pop(workload_id, None)
                continue
            self._problems.pop(workload_id, None)
            self._read_bundle(workload_id, entry)
            task = asyncio.create_task(self._load(workload_id, entry))
            self._loads[workload_id] = (entry, task)

    def _read_bundle(self, workload_id: str, entry: ManifestEntry) -> None:
        """The routing facts of a new champion, before its weights load (a small JSON file)."""
        try:
            manifest = _manifest_of(entry.path)
            self._bundles[workload_id] = read_bundle(entry.path, manifest, self._default(workload_id))
        except (OSError, ValueError) as exc:
            log.warning("champion %s of %s: no usable bundle (%s)", entry.model_id, workload_id, exc)
            self._bundles.pop(workload_id, None)

    def _cancel_load(self, workload_id: str) -> None:
        pending = self._loads.pop(workload_id, None)
        if pending is not None:
            pending[1].cancel()

    async def _load(self, workload_id: str, entry: ManifestEntry) -> None:
        try:
            default = self._default(workload_id)
            predictor = await asyncio.to_thread(load_predictor, entry.path, self._loader, default)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("champion %s of %s failed to load: %s", entry.model_id, workload_id, exc)
            if self._manifest.get(workload_id) == entry:
                self._problems[workload_id] = "champion_load_failed"
                self._loads.pop(workload_id, None)
            return
        if self._manifest.get(workload_id) != entry:  # superseded while loading
            return
        batcher = DynamicBatcher(predictor.predict, **self._batching)
        self._champions[workload_id] = Champion(workload_id, entry, predictor, batcher)
        self._bundles[workload_id] = predictor.bundle
        self._problems.pop(workload_id, None)
        self._loads.pop(workload_id, None)
        self.swaps += 1
        log.info("champion of %s is now %s", workload_id, entry.model_id)


def read_manifest(path: Path) -> dict[str, ManifestEntry]:
    """Parse champions.json; relative artifact paths are relative to the manifest's directory."""
    try:
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: top level must be an object of workload id -> champion")
    manifest = {}
    for workload_id, item in raw.items():
        if not isinstance(item, dict) or not item.get("model_id") or not item.get("path"):
            raise ValueError(f"{path}: {workload_id}: needs 'model_id' and 'path'")
        artifact = Path(item["path"]).expanduser()
        manifest[workload_id] = ManifestEntry(
            model_id=str(item["model_id"]),
            path=artifact if artifact.is_absolute() else path.parent / artifact,
            kind=item.get("kind"),
            promoted_at=None if item.get("promoted_at") is None else str(item["promoted_at"]),
            **_cascade_fields(path, workload_id, item),
        )
    return manifest


def _cascade_fields(path: Path, workload_id: str, item: dict[str, Any]) -> dict[str, Any]:
    """threshold/claims/coverage of a partial promotion, checked (a bad value is a bad manifest)."""
    fields: dict[str, Any] = {}
    for key in ("threshold", "coverage"):
        value = item.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"{path}: {workload_id}: {key} must be a number within [0, 1], got {value!r}")
        fields[key] = float(value)
    claims = item.get("claims")
    if claims is not None:
        if claims not in CLAIMS:
            raise ValueError(
                f"{path}: {workload_id}: claims must be one of {', '.join(CLAIMS)}, got {claims!r}"
            )
        fields["claims"] = claims
    return fields


def _manifest_of(path: Path) -> dict[str, Any] | None:
    from flywheel.train.student import read_manifest

    try:
        return read_manifest(path)
    except (OSError, orjson.JSONDecodeError):
        return None


def import_loader(spec: str) -> Loader:
    """`module:function` -> a loader (serve.student_loader)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"student_loader must look like module:function, got {spec!r}")
    return getattr(importlib.import_module(module_name), attribute)


def _stat_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)
