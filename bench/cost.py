"""``compute_cost`` for one call of a model already priced once, against genai-prices'
own ``calc_price`` for the same call (what each call cost before kithooks kept the rates)."""

from __future__ import annotations

import time

import kithooks

from .timing import compare, table

CALL = {"input_tokens": 1200, "output_tokens": 80, "cache_read_tokens": 400}
MODELS = (("anthropic", "claude-sonnet-4-5"), ("deepseek", "deepseek-chat"))


def run(number: int, rounds: int) -> tuple[str, dict[str, float]]:
    import genai_prices

    # genai-prices counts cache reads inside input_tokens.
    usage = genai_prices.Usage(
        input_tokens=1600, output_tokens=80, cache_read_tokens=400, cache_write_tokens=0
    )
    results: dict[str, float] = {}
    rows = []
    for provider, model in MODELS:
        kithooks.usage._lookup.cache_clear()
        start = time.perf_counter_ns()
        kithooks.compute_cost(provider=provider, model=model, **CALL)
        first = time.perf_counter_ns() - start
        r = compare(
            {
                "compute_cost": lambda p=provider, m=model: kithooks.compute_cost(
                    provider=p, model=m, **CALL
                ),
                "genai_prices.calc_price": lambda p=provider, m=model: genai_prices.calc_price(
                    usage, m, provider_id=p
                ),
            },
            number=max(1, number // 10),
            rounds=rounds,
        )
        results[model] = r["compute_cost"]
        results[f"{model} calc_price"] = r["genai_prices.calc_price"]
        rows.append(
            [
                f"{provider}/{model}",
                f"{first / 1000:,.0f}",
                f"{r['compute_cost'] / 1000:.2f}",
                f"{r['genai_prices.calc_price'] / 1000:.1f}",
            ]
        )
    text = table(
        "compute_cost, µs per call",
        rows,
        ["model", "first call µs", "later call µs", "genai_prices.calc_price µs"],
    )
    text += (
        "\nThe first call looks the model up and measures its rates with genai-prices; "
        "deepseek-chat's price changes with the hour (chosen again each second).\n"
    )
    return text, results
