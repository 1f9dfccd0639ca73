"""Tiny datasets in the public files' formats, and where the real ones are (tests skip without them)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from flywheel.recipes import default_data

LABELS = ["card_arrival", "card_linking", "exchange_rate", "top_up_failed"]


@pytest.fixture
def banking_dir(tmp_path: Path) -> Path:
    data = tmp_path / "banking77"
    data.mkdir()
    (data / "categories.json").write_text(json.dumps(LABELS))
    for name, rows in (("train.csv", 100), ("test.csv", 12)):
        with (data / name).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "category"])
            for i in range(rows):
                writer.writerow([f"{name} message number {i}, about {LABELS[i % 4]}", LABELS[i % 4]])
    return data


def snips_item(*pieces: tuple[str, str | None]) -> dict:
    return {"data": [{"text": t, **({"entity": e} if e else {})} for t, e in pieces]}


@pytest.fixture
def snips_dir(tmp_path: Path) -> Path:
    data = tmp_path / "snips"
    data.mkdir()
    train = {
        "GetWeather": [snips_item(("weather in ", None), (f"City{i}", "city")) for i in range(6)],
        "PlayMusic": [snips_item(("play ", None), ("jazz", "genre"), (" and ", None), ("soul", "genre"))],
    }
    held = {"GetWeather": [snips_item(("rain in ", None), ("Oslo", "city"), (" tomorrow", None))]}
    (data / "train_GetWeather_full.json").write_text(json.dumps({"GetWeather": train["GetWeather"]}))
    (data / "train_PlayMusic_full.json").write_text(json.dumps({"PlayMusic": train["PlayMusic"]}))
    (data / "validate_GetWeather.json").write_text(json.dumps(held))
    return data


def real_data(name: str) -> Path:
    path = default_data(name)
    if not path.is_dir():
        pytest.skip(f"public dataset not found at {path}")
    return path
