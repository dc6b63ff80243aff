"""compute_cost with genai-prices, and the llm_usage helper."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kithooks
from kithooks import ModelPrice, compute_cost, usage_event
from kithooks.usage import split_model

# Anthropic's list prices for claude-sonnet-4-5 (USD per million tokens), as published:
# input 3, output 15, cache read 0.30, cache write (5 min) 3.75.
SONNET = {"input": 3.0, "output": 15.0, "cache_read": 0.30, "cache_write": 3.75}


def by_hand(prices, inp, out, read, write):
    return (
        inp * prices["input"]
        + out * prices["output"]
        + read * prices["cache_read"]
        + write * prices["cache_write"]
    ) / 1_000_000


def test_known_model_priced_by_hand():
    cost = compute_cost(
        provider="anthropic", model="claude-sonnet-4-5", input_tokens=1000, output_tokens=200
    )
    assert cost == pytest.approx(by_hand(SONNET, 1000, 200, 0, 0))


@given(
    inp=st.integers(0, 150_000),
    out=st.integers(0, 50_000),
    read=st.integers(0, 40_000),
    write=st.integers(0, 9_000),
)
def test_cache_tokens_are_converted_to_genai_prices_convention(inp, out, read, write):
    # kithooks' input_tokens exclude cache reads and writes; genai-prices counts them
    # inside input. A wrong conversion charges cache tokens twice or not at all.
    # (Inputs stay under 200k so the long-context tier does not apply.)
    cost = compute_cost(
        provider="anthropic",
        model="claude-sonnet-4-5",
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=read,
        cache_write_tokens=write,
    )
    assert cost == pytest.approx(by_hand(SONNET, inp, out, read, write), rel=1e-9, abs=1e-12)


def test_openai_model():
    cost = compute_cost(provider="openai", model="gpt-4o", input_tokens=1_000_000, output_tokens=0)
    assert cost == pytest.approx(2.5)


def test_oauth_and_unknown_models_cost_nothing_and_log_once(caplog):
    assert (
        compute_cost(
            provider="anthropic",
            model="claude-sonnet-4-5",
            input_tokens=10,
            output_tokens=10,
            oauth=True,
        )
        == 0.0
    )
    with caplog.at_level(logging.DEBUG, logger="kithooks"):
        for _ in range(3):
            assert (
                compute_cost(provider="acme", model="rocket-9000", input_tokens=5, output_tokens=5)
                == 0.0
            )
            assert (
                compute_cost(
                    provider="", model="no-such-model-xyz", input_tokens=5, output_tokens=5
                )
                == 0.0
            )
    messages = [r.getMessage() for r in caplog.records if "rocket-9000" in r.getMessage()]
    assert len(messages) == 1 and caplog.records[0].levelno == logging.DEBUG


def test_host_prices_for_models_the_table_lacks():
    prices = {"acme/rocket": ModelPrice(input=1.0, output=2.0, cache_read=0.1)}
    cost = compute_cost(
        provider="acme",
        model="rocket",
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        cache_read_tokens=1_000_000,
        cache_write_tokens=1_000_000,
        prices=prices,
    )
    assert cost == pytest.approx(1.0 + 2.0 + 0.1 + 1.0)  # cache write at the input rate
    assert (
        compute_cost(
            provider="x",
            model="rocket",
            input_tokens=0,
            output_tokens=10**6,
            prices={"rocket": ModelPrice(input=1, output=4)},
        )
        == 4
    )


def test_bad_token_counts_raise():
    with pytest.raises(ValueError, match="input_tokens must be >= 0"):
        compute_cost(provider="openai", model="gpt-4o", input_tokens=-1, output_tokens=0)
    with pytest.raises(TypeError, match="output_tokens must be int"):
        compute_cost(provider="openai", model="gpt-4o", input_tokens=1, output_tokens="2")  # type: ignore[arg-type]


def test_usage_event_helper():
    event = usage_event(
        provider="",
        model="anthropic/claude-sonnet-4-5",
        input_tokens=1000,
        output_tokens=100,
        step_number=2,
        finish_reason="tool-calls",
    )
    assert isinstance(event, kithooks.LLMUsageEvent)
    assert (event.provider, event.model, event.step_number) == ("anthropic", "claude-sonnet-4-5", 2)
    assert event.cost == pytest.approx(by_hand(SONNET, 1000, 100, 0, 0))
    assert split_model("bare") == ("", "bare")
