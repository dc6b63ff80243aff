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


# Models with each kind of price genai-prices has: flat (gpt-4o), a long-context tier
# (claude-sonnet-4-5, gemini-2.5-pro), and a price that changes with the hour (deepseek-chat).
TABLE_MODELS = [
    ("anthropic", "claude-sonnet-4-5"),
    ("openai", "gpt-4o"),
    ("google", "gemini-2.5-pro"),
    ("deepseek", "deepseek-chat"),
    ("openrouter", "anthropic/claude-sonnet-4.5"),
]


@given(
    which=st.sampled_from(TABLE_MODELS),
    inp=st.integers(0, 400_000),
    out=st.integers(0, 60_000),
    read=st.integers(0, 150_000),
    write=st.integers(0, 60_000),
)
def test_cached_rates_price_every_call_as_genai_prices_does(which, inp, out, read, write):
    # The rates kept after a model's first call must give what genai-prices itself computes
    # for the same call, on both sides of a long-context tier's start.
    import genai_prices

    provider, model = which
    expected = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=inp + read + write,
            output_tokens=out,
            cache_read_tokens=read,
            cache_write_tokens=write,
        ),
        model,
        provider_id=provider,
    ).total_price
    got = compute_cost(
        provider=provider,
        model=model,
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=read,
        cache_write_tokens=write,
    )
    assert got == pytest.approx(float(expected), rel=1e-12, abs=1e-15)


def test_every_model_of_the_table_is_priced_as_genai_prices_prices_it():
    # Every model genai-prices can price, at a call of no tokens, a tiny one, one with cache
    # reads and writes, and one past every long-context tier's start. Perplexity's models
    # also charge per request: that fee is part of every call's cost, not of a token rate.
    import genai_prices
    from genai_prices import data_snapshot

    usages = [(0, 0, 0, 0), (1, 1, 0, 0), (1000, 500, 200, 100), (250_000, 1000, 30_000, 0)]
    checked = 0
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            for inp, out, read, write in usages:
                usage = genai_prices.Usage(
                    input_tokens=inp + read + write,
                    output_tokens=out,
                    cache_read_tokens=read,
                    cache_write_tokens=write,
                )
                try:
                    price = genai_prices.calc_price(usage, model.id, provider_id=provider.id)
                except LookupError:  # an id genai-prices cannot find by itself
                    continue
                got = compute_cost(
                    provider=provider.id,
                    model=model.id,
                    input_tokens=inp,
                    output_tokens=out,
                    cache_read_tokens=read,
                    cache_write_tokens=write,
                )
                assert got == pytest.approx(float(price.total_price), rel=1e-12, abs=1e-15), (
                    provider.id,
                    model.id,
                    (inp, out, read, write),
                )
                checked += 1
    assert checked > 5000


def test_a_per_request_fee_is_charged_once_per_call():
    # perplexity/sonar charges per request as well as per token: a call of no tokens costs
    # the fee, and each further thousand tokens costs the same whatever came before.
    def sonar(tokens: int) -> float:
        return compute_cost(
            provider="perplexity", model="sonar", input_tokens=tokens, output_tokens=tokens
        )

    fee = sonar(0)
    assert fee > 0
    assert sonar(2000) - sonar(1000) == pytest.approx(sonar(1000) - fee)
    assert sonar(1000) - fee < fee  # the token rates do not carry the fee


def test_tier_boundary_is_genai_prices_boundary():
    # claude-sonnet-4-5's long-context rates apply once the input (cache included) exceeds
    # 200k tokens: exactly 200,000 is the base rate, 200,001 the tier's.
    at = compute_cost(
        provider="anthropic",
        model="claude-sonnet-4-5",
        input_tokens=199_000,
        output_tokens=0,
        cache_read_tokens=1_000,
    )
    above = compute_cost(
        provider="anthropic",
        model="claude-sonnet-4-5",
        input_tokens=199_001,
        output_tokens=0,
        cache_read_tokens=1_000,
    )
    assert at == pytest.approx((199_000 * 3.0 + 1_000 * 0.30) / 1e6)
    assert above > at * 1.9  # the tier doubles the input rate


def test_empty_provider_with_provider_slash_model_name():
    plain = compute_cost(
        provider="anthropic", model="claude-sonnet-4-5", input_tokens=1000, output_tokens=200
    )
    assert compute_cost(
        provider="", model="anthropic/claude-sonnet-4-5", input_tokens=1000, output_tokens=200
    ) == pytest.approx(plain)
    # A name whose first part is not a provider is looked up whole (openrouter's names are
    # "vendor/model"), and a slash name nobody knows costs nothing.
    assert compute_cost(
        provider="",
        model="openrouter/anthropic/claude-sonnet-4.5",
        input_tokens=1000,
        output_tokens=200,
    ) == pytest.approx(plain)
    assert (
        compute_cost(provider="", model="nobody/knows-this", input_tokens=1, output_tokens=1) == 0
    )


@pytest.mark.parametrize("field", ["model", "provider"])
def test_none_model_or_provider_is_a_type_error_naming_it(field):
    kwargs = {"provider": "openai", "model": "gpt-4o", field: None}
    with pytest.raises(TypeError, match=f"^{field} must be str, not NoneType$"):
        compute_cost(**kwargs, input_tokens=1, output_tokens=1)
    with pytest.raises(TypeError, match=f"^{field} must be str"):
        usage_event(**kwargs, input_tokens=1, output_tokens=1)


def test_bool_token_counts_raise_even_on_the_fast_path():
    with pytest.raises(TypeError, match="cache_read_tokens must be int, not bool"):
        compute_cost(
            provider="openai",
            model="gpt-4o",
            input_tokens=1,
            output_tokens=1,
            cache_read_tokens=True,
        )


def test_remembered_lookups_are_bounded():
    from kithooks import usage

    for i in range(usage.LOOKUP_CACHE_SIZE + 200):
        assert compute_cost(provider="acme", model=f"m-{i}", input_tokens=1, output_tokens=1) == 0
        assert compute_cost(provider="", model=f"anon-{i}", input_tokens=1, output_tokens=1) == 0
    assert usage._lookup.cache_info().currsize <= usage.LOOKUP_CACHE_SIZE
    # genai-prices' own look-up memory does not grow with the unknown names either.
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    remembered = set(snapshot._provider_cache) | snapshot._provider_misses
    assert not any(key[0] and str(key[0]).startswith(("m-", "anon-")) for key in remembered)


def test_genai_prices_is_imported_only_when_a_price_is_needed():
    import subprocess
    import sys

    code = (
        "import sys, kithooks\n"
        "assert 'genai_prices' not in sys.modules, 'imported by import kithooks'\n"
        "kithooks.compute_cost(provider='openai', model='gpt-4o', input_tokens=1,"
        " output_tokens=1, oauth=True)\n"
        "assert 'genai_prices' not in sys.modules, 'imported for an oauth call'\n"
        "kithooks.compute_cost(provider='openai', model='gpt-4o', input_tokens=1,"
        " output_tokens=1)\n"
        "assert 'genai_prices' in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_updated_price_snapshot_is_used():
    # genai-prices can swap in newer prices (UpdatePrices); remembered rates must not outlive
    # the snapshot they came from.
    import dataclasses
    from decimal import Decimal

    from genai_prices import data_snapshot, types

    before = compute_cost(provider="openai", model="gpt-4o", input_tokens=10**6, output_tokens=0)
    assert before == pytest.approx(2.5)
    old = data_snapshot.get_snapshot()
    providers = []
    for provider in old.providers:
        models = [
            dataclasses.replace(m, prices=types.ModelPrice(input_mtok=Decimal(7)))
            if (provider.id, m.id) == ("openai", "gpt-4o")
            else m
            for m in provider.models
        ]
        providers.append(dataclasses.replace(provider, models=models))
    data_snapshot.set_custom_snapshot(data_snapshot.DataSnapshot(providers, from_auto_update=True))
    try:
        after = compute_cost(provider="openai", model="gpt-4o", input_tokens=10**6, output_tokens=0)
    finally:
        data_snapshot.set_custom_snapshot(None)
    assert after == pytest.approx(7.0)
    assert compute_cost(
        provider="openai", model="gpt-4o", input_tokens=10**6, output_tokens=0
    ) == pytest.approx(2.5)


def test_usage_value_checks_its_counts_and_gives_them_by_name():
    import pytest as _pytest

    from kithooks import Usage

    u = Usage(input_tokens=10, output_tokens=2, cache_read_tokens=3)
    assert u.counts() == {
        "input_tokens": 10,
        "output_tokens": 2,
        "cache_read_tokens": 3,
        "cache_write_tokens": 0,
    }
    with _pytest.raises(ValueError, match="output_tokens must be >= 0"):
        Usage(output_tokens=-1)
    with _pytest.raises(TypeError, match="input_tokens must be int"):
        Usage(input_tokens="10")  # type: ignore[arg-type]


_PRICE_FIELDS = ("input", "output", "cache_read", "cache_write")


def _price(field, value):
    kwargs = {"input": 1, "output": 2, field: value}
    return ModelPrice(**kwargs)


@given(
    field=st.sampled_from(_PRICE_FIELDS),
    value=st.one_of(
        st.text(max_size=3),
        st.booleans(),
        st.lists(st.integers(), max_size=1),
        st.dictionaries(st.text(max_size=1), st.integers(), max_size=1),
        st.decimals(allow_nan=False, allow_infinity=False),
    ),
)
def test_a_price_that_is_not_a_number_is_a_type_error_naming_the_field(field, value):
    """Found in review: ModelPrice took anything, and every agent run then failed at its
    first response with a bare TypeError ('str' and 'int'). Refused when made instead."""
    with pytest.raises(TypeError, match=rf"ModelPrice\.{field} must be an int"):
        _price(field, value)


@given(
    field=st.sampled_from(_PRICE_FIELDS),
    value=st.one_of(
        st.floats(max_value=-1e-300),
        st.integers(max_value=-1),
        st.sampled_from([float("nan"), float("inf"), 10**400]),
    ),
)
def test_a_negative_or_unbounded_price_is_a_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"ModelPrice\.{field} must be a finite number"):
        _price(field, value)


@given(
    field=st.sampled_from(_PRICE_FIELDS),
    value=st.one_of(st.integers(0, 10**9), st.floats(0, 1e9)),
)
def test_every_finite_price_of_0_or_more_is_taken(field, value):
    price = _price(field, value)
    assert getattr(price, field) == value
    assert price.cost(1, 1, 1, 1) >= 0


def test_a_missing_price_is_a_type_error_and_a_missing_cache_price_the_input_rate():
    with pytest.raises(TypeError, match=r"ModelPrice\.input must be an int or a float"):
        ModelPrice(input=None, output=1)
    assert ModelPrice(input=2, output=1, cache_read=None).cost(0, 0, 1_000_000, 0) == 2


def test_a_prices_entry_that_is_not_a_model_price_is_a_type_error_naming_its_key():
    for key in ("acme/m1", "m1"):
        with pytest.raises(TypeError, match=rf"prices\[{key!r}\] must be a kithooks.ModelPrice"):
            compute_cost(
                provider="acme",
                model="m1",
                input_tokens=1,
                output_tokens=1,
                prices={key: {"input": 3, "output": 15}},
            )


_LITELLM_NAMES = [
    "openai/gpt-4o",
    "gpt-4o",
    "anthropic/claude-sonnet-4-5",
    "openrouter/openai/gpt-4o",
    "acme/gpt-4o",
    "OpenAI/GPT-4o-mini",
    "/gpt-4o",
    "google/gemini-2.5-pro",
    "gemini-2.5-flash",
    "claude-3-5-haiku-latest",
    "mystery",
    "openai/ft-unknown",
]


@pytest.mark.parametrize("name", _LITELLM_NAMES)
def test_litellm_names_find_what_genai_prices_finds(name):
    from genai_prices import data_snapshot

    from kithooks.usage import _find

    snapshot = data_snapshot.get_snapshot()
    try:
        expected = snapshot.find_provider_model(name, None, "litellm", None)[1]
    except LookupError:
        expected = None
    assert _find(snapshot, "litellm", name) is expected


def test_unknown_litellm_names_do_not_grow_genai_prices_look_up_memory():
    """Found in review: provider='litellm' went through DataSnapshot.find_provider_model,
    which remembers every name it is asked about: 10,000 unknown names left 5,000 entries
    in each of genai-prices' provider caches."""
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()

    def remembered():
        return (
            len(snapshot._lookup_cache),
            len(snapshot._provider_cache),
            len(snapshot._provider_misses),
        )

    before = remembered()
    for i in range(300):
        for model in (f"openai/ft-unknown-{i}", f"acme/m-{i}", f"anon-{i}"):
            assert (
                compute_cost(provider="litellm", model=model, input_tokens=1, output_tokens=1)
                == 0.0
            )
    assert remembered() == before
