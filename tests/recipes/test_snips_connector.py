"""The snips span format -> {"intent", "slots"} interactions: conversion, repeated slots, bad files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from connectors import REGISTRY, ReadContext, SourceError
from connectors.snips import SnipsFormatError, iter_utterances, parse_pieces
from flywheel.records import Interaction, Rejected


def write(path: Path, document: object, encoding: str = "utf-8") -> Path:
    path.write_bytes(json.dumps(document, ensure_ascii=False).encode(encoding))
    return path


def read(path: Path, **mapping: object) -> list[Interaction | Rejected]:
    return list(REGISTRY["snips"].read(path, ReadContext(workload_id="snips", mapping=mapping)))


def test_spans_become_intent_and_slots() -> None:
    pieces = [
        {"text": "Book a table for "},
        {"text": "two", "entity": "party_size_number"},
        {"text": " in "},
        {"text": " Paris ", "entity": "city"},
    ]
    text, slots = parse_pieces(pieces, "BookRestaurant")
    assert text == "Book a table for two in  Paris"
    assert slots == {"party_size_number": "two", "city": "Paris"}


def test_a_repeated_slot_is_a_list_in_utterance_order() -> None:
    pieces = [
        {"text": "play "},
        {"text": "jazz", "entity": "genre"},
        {"text": " and "},
        {"text": "blues", "entity": "genre"},
        {"text": " and "},
        {"text": "soul", "entity": "genre"},
    ]
    assert parse_pieces(pieces, "PlayMusic")[1] == {"genre": ["jazz", "blues", "soul"]}


def test_connector_yields_one_interaction_per_utterance(tmp_path: Path) -> None:
    path = write(
        tmp_path / "train_GetWeather.json",
        {"GetWeather": [
            {"data": [{"text": "weather in "}, {"text": "Oslo", "entity": "city"}]},
            {"data": [{"text": "is it sunny"}]},
        ]},
    )  # fmt: skip
    items = read(path, system_prompt="Answer JSON")
    assert all(isinstance(i, Interaction) for i in items)
    first, second = items
    assert first.request["messages"] == [
        {"role": "system", "content": "Answer JSON"},
        {"role": "user", "content": "weather in Oslo"},
    ]
    assert json.loads(first.response["message"]["content"]) == {
        "intent": "GetWeather",
        "slots": {"city": "Oslo"},
    }
    assert json.loads(second.response["message"]["content"]) == {"intent": "GetWeather", "slots": {}}
    assert first.source_ref == f"{path}:GetWeather[0]" and second.source_ref == f"{path}:GetWeather[1]"
    assert first.metadata == {"intent": "GetWeather"}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"text": "no data key"}, '"data" list'),
        ({"data": []}, "non-empty list"),
        ({"data": [{"txt": "typo"}]}, 'piece 0 must be an object with a string "text"'),
        (
            {"data": [{"text": "a"}, {"text": "b", "entity": 3}]},
            'piece 1: "entity" must be a non-empty string',
        ),
        ({"data": [{"text": "   ", "entity": "city"}]}, "slot 'city' has an empty value"),
        ({"data": [{"text": "  "}]}, "the utterance is empty"),
        ("just a string", '"data" list'),
    ],
)
def test_a_bad_utterance_is_quarantined_naming_file_and_index(
    tmp_path: Path, item: object, message: str
) -> None:
    good = {"data": [{"text": "fine"}]}
    path = write(tmp_path / "bad.json", {"RateBook": [good, item]})
    ok, bad = read(path)
    assert isinstance(ok, Interaction)
    assert isinstance(bad, Rejected) and bad.reason == "invalid_snips_item"
    assert bad.source_ref == f"{path}:RateBook[1]"
    assert bad.detail.startswith(f"{path}:RateBook[1]: ") and message in bad.detail


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not a JSON document"),
        (b"[1, 2]", "expected a JSON object {intent: [utterances]}, got list"),
        (b"{}", "got an empty object"),
        (b'{"PlayMusic": {"data": []}}', "intent 'PlayMusic' must map to a list, got dict"),
    ],
)
def test_a_file_that_is_not_snips_is_a_source_error_naming_it(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "weird.json"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=re.escape(message)) as error:
        read(path)
    assert str(path) in str(error.value)


def test_latin1_files_are_read_and_utf8_can_be_required(tmp_path: Path) -> None:
    path = write(tmp_path / "l1.json", {"PlayMusic": [{"data": [{"text": "play Beyoncé"}]}]}, "latin-1")
    (item,) = iter_utterances(path)
    assert item.text == "play Beyoncé"
    with pytest.raises(SourceError, match="not UTF-8"):
        list(iter_utterances(path, "utf-8"))


def test_parse_pieces_rejects_a_non_list() -> None:
    with pytest.raises(SnipsFormatError):
        parse_pieces({"text": "x"}, "X")


def test_ingest_counts_add_up_and_rerun_adds_nothing(tmp_path: Path) -> None:
    from flywheel.ingest import ingest_paths
    from flywheel.store.db import Warehouse

    path = write(
        tmp_path / "t.json",
        {
            "AddToPlaylist": [
                {"data": [{"text": "add "}, {"text": "this", "entity": "music_item"}]},
                {"data": 1},
            ]
        },
    )
    warehouse = Warehouse(tmp_path / "w.duckdb")
    first = ingest_paths(warehouse, [path], workload_id="snips", fmt="snips")
    again = ingest_paths(warehouse, [path], workload_id="snips", fmt="snips")
    assert (first.total("read"), first.total("ingested"), first.total("quarantined")) == (2, 1, 1)
    assert (again.total("ingested"), again.total("duplicates")) == (0, 1)


def test_snips_files_are_detected_pretty_printed_or_compact(tmp_path: Path) -> None:
    from connectors.detect import detect_format

    document = {"GetWeather": [{"data": [{"text": "rain?"}]}]}
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(document, indent=2))
    compact = write(tmp_path / "compact.json", document)
    assert detect_format(pretty) == detect_format(compact) == "snips"
