"""`qrverify serve --leeway` / QRVERIFY_LEEWAY reach the verifier."""

from __future__ import annotations

import argparse

import pytest

from verifier.http import config


def _resolve(argv: list[str], env: dict[str, str]) -> config.ServeConfig:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return config.resolve(parser.parse_args(["--trust", "trust.json", *argv]), env)


def test_leeway_from_flag_env_and_default() -> None:
    assert _resolve([], {}).leeway == 300
    assert _resolve([], {"QRVERIFY_LEEWAY": "120"}).leeway == 120
    assert _resolve(["--leeway", "60"], {"QRVERIFY_LEEWAY": "120"}).leeway == 60


def test_leeway_out_of_range_is_a_config_error() -> None:
    with pytest.raises(config.ServeConfigError, match="QRVERIFY_LEEWAY"):
        _resolve([], {"QRVERIFY_LEEWAY": "-5"})
