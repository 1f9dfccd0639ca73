"""Hardware cost profiles (hardware.yaml): what an hour of the machine serving a student costs."""

from __future__ import annotations

from importlib import resources

import yaml


def hardware_profiles() -> dict[str, float]:
    """Profile name -> USD per hour, from the packaged hardware.yaml."""
    raw = yaml.safe_load(resources.files(__package__).joinpath("hardware.yaml").read_text()) or {}
    return {name: float(entry["usd_per_hour"]) for name, entry in raw.items()}


def hardware_usd_per_hour(profile: str) -> float:
    profiles = hardware_profiles()
    if profile not in profiles:
        raise ValueError(f"unknown hardware profile {profile!r} (known: {', '.join(sorted(profiles))})")
    return profiles[profile]


def cost_per_1k_requests(usd_per_hour: float, requests_per_second: float) -> float | None:
    """usd_per_hour / requests per hour * 1000; None when nothing was measured."""
    if requests_per_second <= 0:
        return None
    return usd_per_hour / (requests_per_second * 3600) * 1000
