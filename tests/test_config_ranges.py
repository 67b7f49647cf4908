"""Declared ranges of config fields: parsing, inheritance, and one error message for every out-of-range value."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

from marlkit.algos import ALGOS, get_algo
from marlkit.algos.base import AlgoConfig, ConfigError, Interval, declared_range, ranged
from marlkit.algos.decentralized import DecentralizedConfig


def test_interval_parse_contains_and_text():
    unit = Interval.parse("(0, 1]")
    assert (0.0 in unit, 1e-9 in unit, 1.0 in unit, 1.5 in unit) == (False, True, True, False)
    half = Interval.parse("[0,1)")
    assert (0.0 in half, 1.0 in half) == (True, False) and str(half) == "[0, 1)"
    ray = Interval.parse("[1, inf)")
    assert 10**9 in ray and 0 not in ray and ray.high == math.inf and str(ray) == "[1, inf)"
    assert Interval.parse("(-inf, 0]").low == -math.inf


@pytest.mark.parametrize("text", ["0, 1", "(1, 0)", "(a, 1]", "[0; 1]", "", None, "(nan, 1)"])
def test_malformed_range_is_refused_when_the_class_is_defined(text):
    with pytest.raises(ValueError, match="range"):
        ranged(0.5, text)


@pytest.mark.parametrize("text, integer, words", [
    ("(0, inf)", False, "positive, in (0, inf)"),
    ("[0, inf)", False, "non-negative, in [0, inf)"),
    ("[1, inf)", True, "a positive integer, in [1, inf)"),
    ("[0, inf)", True, "a non-negative integer, in [0, inf)"),
    ("[1, inf)", False, "in [1, inf)"),
    ("(0, 1]", False, "in (0, 1]"),
])
def test_describe(text, integer, words):
    assert Interval.parse(text).describe(integer) == words


def test_redeclared_field_keeps_the_base_range():
    assert str(declared_range(DecentralizedConfig, "lr")) == "(0, inf)"  # lr re-declared with another default
    with pytest.raises(ConfigError, match=r"^lr must be positive, in \(0, inf\), got 0\.0$"):
        DecentralizedConfig(lr=0.0).validate()
    assert declared_range(AlgoConfig, "hidden") is None


def _outside(interval: Interval, integer: bool) -> list:
    step = 1 if integer else 0.5
    out = []
    if math.isfinite(interval.low):
        out.append(interval.low - step if interval.low_closed else interval.low)
    if math.isfinite(interval.high):
        out.append(interval.high + step if interval.high_closed else interval.high)
    return [int(v) if integer else float(v) for v in out]


def _ranged_fields():
    seen = set()
    for name in sorted(ALGOS):
        cfg = get_algo(name).Config
        for f in dataclasses.fields(cfg):
            interval = declared_range(cfg, f.name)
            if interval is not None and (cfg, f.name) not in seen:
                seen.add((cfg, f.name))
                yield pytest.param(cfg, f.name, interval, str(f.type) == "int", id=f"{name}-{f.name}")


@pytest.mark.parametrize("cfg, name, interval, integer", list(_ranged_fields()))
def test_every_declared_range_is_checked_with_one_message(cfg, name, interval, integer):
    cfg().validate()  # the defaults lie in their ranges
    values = _outside(interval, integer)
    assert values, f"{cfg.__name__}.{name}: a range without a finite bound checks nothing"
    for value in values:
        with pytest.raises(ConfigError) as info:
            cfg.from_dict({name: value})
        text = str(info.value)
        pattern = rf"{name} must be (?:[a-z -]+, )?in {re.escape(str(interval))}, got {re.escape(repr(value))}"
        assert re.fullmatch(pattern, text), text


def test_every_alpha_and_tau_declares_its_range():
    for name in ALGOS:
        cfg = get_algo(name).Config
        for f in dataclasses.fields(cfg):
            if f.name in ("alpha", "tau", "lr", "gamma", "batch_size"):
                assert declared_range(cfg, f.name) is not None, (name, f.name)


def test_cross_field_checks_stay_with_their_config():
    with pytest.raises(ConfigError, match="omar_num_elites"):
        get_algo("omar").Config.from_dict({"omar_num_samples": 2, "omar_num_elites": 5})
    with pytest.raises(ConfigError, match="share_params=True is incompatible"):
        get_algo("inspo").Config.from_dict({"share_params": True})
