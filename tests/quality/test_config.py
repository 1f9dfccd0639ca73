from pathlib import Path

import pytest

from flywheel.config import ConfigError, load_config
from flywheel.config.curation import CurationConfig
from flywheel.demo import demo_config_path


def test_demo_config_gets_the_defaults_but_a_larger_eval_split() -> None:
    workload = load_config(demo_config_path()).workload("support-routing")
    # the demo's label skew is planted: its caps may cut a label below its traffic share
    assert workload.curation == CurationConfig(eval_fraction=0.2, cap_below_production_share=True)


@pytest.mark.parametrize(
    ("curation", "message"),
    [
        ("{max_slice_shar: 0.2}", "workloads[0].curation.max_slice_shar"),
        ("{pii_patterns: {emp: '(unclosed'}}", "pii_patterns.emp: invalid regular expression"),
        ("{pii_types: [email, dna]}", "unknown PII types ['dna']"),
        ("{val_fraction: 0.5, eval_fraction: 0.45}", "must leave at least 10% for train"),
        ("{near_dup_threshold: 1.5}", "workloads[0].curation.near_dup_threshold"),
    ],
)
def test_bad_curation_settings_name_file_line_and_key(tmp_path: Path, curation: str, message: str) -> None:
    path = tmp_path / "flywheel.yaml"
    path.write_text(f"workloads:\n  - id: a\n    task: chat\n    curation: {curation}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"{path}:4" in str(info.value) and message in str(info.value)
