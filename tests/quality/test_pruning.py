from pathlib import Path

from flywheel.quality.pruning import (
    apply_template,
    find_template,
    load_template,
    message_tokens,
    save_template,
)
from flywheel.store.db import Warehouse

SYSTEM = {"role": "system", "content": "You route tickets. " * 40}
SHOTS = [
    {"role": "user", "content": "I was charged twice"},
    {"role": "assistant", "content": "billing"},
]


def conversation(i: int, system: dict = SYSTEM) -> list[dict]:
    return [system, *SHOTS, {"role": "user", "content": f"Ticket: my order {i} is late, help"}]


def test_finds_system_prompt_and_few_shot_block() -> None:
    conversations = [conversation(i) for i in range(40)] + [
        conversation(99, {"role": "system", "content": "x"})
    ]
    template = find_template("w", conversations)
    assert template is not None
    assert list(template.messages) == [SYSTEM, *SHOTS]
    assert template.n_static_tokens == message_tokens([SYSTEM, *SHOTS])
    assert apply_template(conversation(5), template) == [
        {"role": "user", "content": "Ticket: my order 5 is late, help"}
    ]
    other = conversation(7, {"role": "system", "content": "a different prompt"})
    assert apply_template(other, template) == other, "a request that does not match is left whole"


def test_common_text_start_of_the_variable_message() -> None:
    preamble = "Classify the following customer ticket into one queue and answer with the queue only.\n\n"
    tickets = ["my order is late", "refund please", "app crashes", "wrong size"] * 8
    conversations = [[{"role": "user", "content": preamble + f"{t} ({i})"}] for i, t in enumerate(tickets)]
    template = find_template("w", conversations, min_static_tokens=8)
    assert template is not None and template.text_prefix == preamble
    assert apply_template(conversations[3], template) == [{"role": "user", "content": "wrong size (3)"}]


def test_no_template_when_nothing_is_shared() -> None:
    assert find_template("w", [[{"role": "user", "content": f"q{i}"}] for i in range(10)]) is None
    assert apply_template([{"role": "user", "content": "hi"}], None) == [{"role": "user", "content": "hi"}]


def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    assert load_template(warehouse, "w") is None
    template = find_template("w", [conversation(i) for i in range(10)])
    assert template is not None
    warehouse.write(lambda con: save_template(con, template))
    warehouse.write(lambda con: save_template(con, template))  # idempotent
    loaded = load_template(warehouse, "w")
    assert loaded == template
    count = warehouse.read(lambda con: con.execute("SELECT count(*) FROM prompt_templates").fetchall()[0][0])
    assert count == 1
    assert warehouse.read(lambda con: load_template(con, "w", template.template_id)) == template
