"""`flywheel config reference`: every key flywheel.yaml accepts, with its type, default and meaning."""

from __future__ import annotations

import typer

from flywheel.cli.app import JsonOpt, app, emit, out

config_app = typer.Typer(help="About flywheel.yaml itself.")
app.add_typer(config_app, name="config", no_args_is_help=True)


@config_app.command("reference")
def reference(as_json: bool = JsonOpt) -> None:
    """Every config key (generated from the models that load the file), as a markdown table."""
    from flywheel.config_reference import kinds_markdown, markdown, student_kinds
    from flywheel.config_reference import reference as config_keys

    keys, kinds = config_keys(), student_kinds()
    text = markdown(keys) + "\nStudent kinds (`workloads[].students[].kind`):\n\n" + kinds_markdown(kinds)
    emit(
        as_json,
        {"keys": [k.as_dict() for k in keys], "student_kinds": kinds},
        lambda: out.print(text, markup=False, highlight=False, soft_wrap=True),
    )
