"""Pricing one LLM call with genai-prices, and building its ``llm_usage`` event.

Token counts follow the original's convention: ``input_tokens`` excludes cache reads and
cache writes. genai-prices counts both inside its ``input_tokens``, so they are added back
before pricing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

import attrs
import genai_prices

from .events import LLMUsageEvent

__all__ = ["ModelPrice", "compute_cost", "split_model", "usage_event"]

logger = logging.getLogger("kithooks")

_unknown_logged: set[tuple[str, str]] = set()
_unknown_lock = threading.Lock()


@attrs.frozen(kw_only=True)
class ModelPrice:
    """A host's own price for a model the price table lacks, in USD per million tokens.

    A cache price left as None is charged at the ``input`` rate.
    """

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None

    def cost(
        self, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int
    ) -> float:
        """USD for one call (``input_tokens`` excludes the cache tokens)."""
        read = self.input if self.cache_read is None else self.cache_read
        write = self.input if self.cache_write is None else self.cache_write
        return (
            input_tokens * self.input
            + output_tokens * self.output
            + cache_read * read
            + cache_write * write
        ) / 1_000_000


def split_model(model: str) -> tuple[str, str]:
    """Split ``'provider/model'`` into ``('provider', 'model')``; no slash gives ``('', model)``."""
    provider, sep, rest = model.partition("/")
    if not sep:
        return "", model
    return provider, rest


def _check_tokens(**counts: int) -> None:
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be int, not {type(value).__name__}")
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")


def compute_cost(
    *,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    oauth: bool = False,
    prices: Mapping[str, ModelPrice] | None = None,
) -> float:
    """The USD cost of one LLM call.

    ``input_tokens`` excludes cache reads and writes (the original's convention).
    ``oauth=True`` (subscription billing) and models the price table does not know cost
    ``0.0``; an unknown model is logged once at debug level. ``prices`` maps
    ``'provider/model'`` or ``'model'`` to a :class:`ModelPrice` and wins over the table.
    Negative or non-int token counts raise.
    """
    _check_tokens(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
    )
    if oauth:
        return 0.0
    if prices:
        custom = prices.get(f"{provider}/{model}") or prices.get(model)
        if custom is not None:
            return custom.cost(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
    usage = genai_prices.Usage(
        input_tokens=input_tokens + cache_read_tokens + cache_write_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
    )
    try:
        calc = genai_prices.calc_price(usage, model, provider_id=provider or None)
    except LookupError as exc:
        key = (provider, model)
        with _unknown_lock:
            first = key not in _unknown_logged
            _unknown_logged.add(key)
        if first:
            logger.debug("no price for model %r of provider %r: %s; cost 0.0", model, provider, exc)
        return 0.0
    return float(calc.total_price)


def usage_event(
    *,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    step_number: int = 0,
    finish_reason: str = "",
    request_id: str = "",
    oauth: bool = False,
    prices: Mapping[str, ModelPrice] | None = None,
) -> LLMUsageEvent:
    """Build the ``llm_usage`` event of one call, its cost priced by :func:`compute_cost`.

    ``model`` may be ``'provider/model'`` when ``provider`` is empty.
    """
    if not provider and "/" in model:
        provider, model = split_model(model)
    cost = compute_cost(
        provider=provider,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
        oauth=oauth,
        prices=prices,
    )
    return LLMUsageEvent(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
        cost=cost,
        model=model,
        provider=provider,
        request_id=request_id,
        step_number=step_number,
        finish_reason=finish_reason,
    )
