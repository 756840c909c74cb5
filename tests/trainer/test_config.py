"""The YAML config: the shipped examples load, typos are refused, overrides apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from rljudge_trainer.cli import main
from rljudge_trainer.config import load_config

CONFIGS = sorted((Path(__file__).parents[2] / "trainer" / "configs").glob("*.yaml"))


def test_there_are_example_configs():
    assert {p.name for p in CONFIGS} >= {"tiny_arithmetic.yaml", "qwen_math_gppo.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_configs_load(path: Path):
    cfg = load_config(path)
    assert cfg.algorithm.policy_loss == "gppo"
    assert cfg.algorithm.clip_ratio_high > cfg.algorithm.clip_ratio_low


def test_overrides_are_parsed_as_yaml():
    cfg = load_config(CONFIGS[0], ["run.steps=3", "algorithm.clip_ratio_c=null", "optim.betas=[0.8, 0.9]"])
    assert cfg.run.steps == 3
    assert cfg.algorithm.clip_ratio_c is None
    assert cfg.optim.betas == (0.8, 0.9)


def test_unknown_keys_are_refused(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("algorithm:\n  clip_ratio_hgih: 0.3\n")
    with pytest.raises(ValueError, match="clip_ratio_hgih"):
        load_config(bad)


def test_cli_reports_a_bad_config_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    bad = tmp_path / "bad.yaml"
    bad.write_text("nope: 1\n")
    assert main(["--config", str(bad)]) == 2
    assert "nope" in capsys.readouterr().err
