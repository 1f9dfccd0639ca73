"""Hardware profiles (hardware_profiles.yaml): what an hour of a machine costs, by profile name.

The one home of the profiles and their default: evaluation prices a student's serving with them, the
savings ledger prices training and serving with them, and `flywheel serve` reads its student's rate
from them, so the gate and the ledger agree on what an hour costs. No warehouse import here: serving
reads this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

PROFILES_PACKAGE = "flywheel"
PROFILES_FILE = "hardware_profiles.yaml"
DEFAULT_PROFILE = "cpu-2core"


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    name: str
    usd_per_hour: float
    description: str = ""


def load_hardware_profiles(path: Path | None = None) -> dict[str, HardwareProfile]:
    """Profile name -> profile, from `path` or the packaged hardware.yaml."""
    source = path or resources.files(PROFILES_PACKAGE).joinpath(PROFILES_FILE)
    raw: dict[str, Any] = yaml.safe_load(source.read_text()) or {}
    profiles = {}
    for name, entry in raw.items():
        try:
            rate = float(entry["usd_per_hour"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: profile {name!r} needs a numeric usd_per_hour") from exc
        if rate < 0:
            raise ValueError(f"{source}: profile {name!r} has a negative usd_per_hour")
        profiles[name] = HardwareProfile(name, rate, str(entry.get("description", "")))
    return profiles


def hardware_profile(name: str, path: Path | None = None) -> HardwareProfile:
    profiles = load_hardware_profiles(path)
    if name not in profiles:
        raise ValueError(f"unknown hardware profile {name!r} (known: {', '.join(sorted(profiles))})")
    return profiles[name]



def usd_per_hour(profile: str, path: Path | None = None) -> float:
    """The profile's USD per hour (ValueError naming the known profiles when unknown)."""
    return hardware_profile(profile, path).usd_per_hour


def cost_per_1k_requests(usd_per_hour: float, requests_per_second: float) -> float | None:
    """usd_per_hour / requests per hour * 1000; None when nothing was measured."""
    if requests_per_second <= 0:
        return None
    return usd_per_hour / (requests_per_second * 3600) * 1000
