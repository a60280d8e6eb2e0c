"""bench/sampler_judge.py's setting parser and real-text windows (no model, no ../shared)."""

from __future__ import annotations

import pytest

from bench import sampler_judge


def test_settings_parse_into_sampler_options():
    assert sampler_judge.parse_setting("cached") == ("cached", {})
    assert sampler_judge.parse_setting("remask:remask_schedule=loop,eta=0.05,top_p=0.9") == (
        "remask",
        {"remask_schedule": "loop", "eta": 0.05, "top_p": 0.9},
    )
    with pytest.raises(ValueError, match="is not key=value"):
        sampler_judge.parse_setting("remask:eta")
    for spec in sampler_judge.DEFAULT_SETTINGS:  # every default names known SampleConfig fields
        from textdiffusion.config import SampleConfig

        name, options = sampler_judge.parse_setting(spec)
        SampleConfig(sampler=name, **options)


def test_real_windows_are_evenly_spaced_and_full_length():
    text = "".join(chr(97 + i % 26) for i in range(1000))
    windows = sampler_judge.real_windows(text, 4, 100)
    assert [len(w) for w in windows] == [100] * 4
    assert windows[0] == text[:100] and windows[-1] == text[900:]
    with pytest.raises(ValueError, match="too few"):
        sampler_judge.real_windows(text[:50], 4, 100)
