"""Pricing one LLM call with genai-prices, and building its ``llm_usage`` event.

Token counts follow the original's convention: ``input_tokens`` excludes cache reads and
cache writes. genai-prices counts both inside its ``input_tokens``, so they are added back
before pricing.

genai-prices is imported when a price is first needed (it takes longer to import than the
rest of kithooks). A model is looked up once: its per-token rates are read from genai-prices
by pricing a few probe calls with genai-prices itself, then kept, so a later call is four
multiplications and a fee per request (zero for most models). The rates of a tiered price (a
long-context tier) are kept per tier; a price that changes with the date or the time of day
is chosen again each second (the table's dates and hours fall on whole seconds).
"""

from __future__ import annotations

import functools
import sys
import time
from bisect import bisect_left as _bisect_left
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from . import logs
from .events import LLMUsageEvent

if TYPE_CHECKING:
    from decimal import Decimal

__all__ = ["Usage", "ModelPrice", "compute_cost", "split_model", "usage_event"]

logger = logs.get("kithooks")

#: How many (provider, model) look-ups are remembered, known and unknown models alike; the
#: least recently used is forgotten first (an unknown model is logged again after that).
LOOKUP_CACHE_SIZE = 1024

_MAX_FLOAT = sys.float_info.max


def _v_rate(inst: object, a: attrs.Attribute[Any], v: object) -> None:
    """A price in USD per million tokens: an int or float, finite, 0 or more (None for a
    cache price: the ``input`` rate)."""
    if v is None and a.default is None:
        return
    if not isinstance(v, int | float) or isinstance(v, bool):
        kind = "an int, a float or None" if a.default is None else "an int or a float"
        raise TypeError(
            f"ModelPrice.{a.name} must be {kind} (USD per million tokens), "
            f"not {type(v).__name__} {v!r}"
        )
    if not 0 <= v <= _MAX_FLOAT:  # NaN, infinities, negative and huge ints fail here
        raise ValueError(f"ModelPrice.{a.name} must be a finite number, 0 or more, not {v!r}")


@attrs.frozen(kw_only=True)
class ModelPrice:
    """A host's own price for a model the price table lacks, in USD per million tokens.

    A cache price left as None is charged at the ``input`` rate. Each price is an int or
    a float, finite and 0 or more: anything else is refused when the price is made
    (``TypeError`` or ``ValueError`` naming the field).
    """

    input: float = attrs.field(validator=_v_rate)
    output: float = attrs.field(validator=_v_rate)
    cache_read: float | None = attrs.field(default=None, validator=_v_rate)
    cache_write: float | None = attrs.field(default=None, validator=_v_rate)

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


def _count(inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 0:  # the common case in one test; else say why
        _check_tokens(**{attribute.name: value})


class _Rates:
    """USD per token of one genai-prices price, for each tier of total input tokens.

    genai-prices charges a tier's rate on all tokens once the call's input (cache reads and
    writes included) exceeds the tier's start, so within one tier the cost is a fixed fee per
    request (most models have none; Perplexity's charge one) plus a rate times each of the
    four counts. The fee is what genai-prices charges for a call of no tokens; the four rates
    of a tier are measured once, with genai-prices pricing probe calls whose input lies in
    that tier, less the fee.
    """

    __slots__ = ("_fee", "_price", "_starts", "_tiers")

    def __init__(self, price: Any) -> None:
        from genai_prices.types import TieredPrices

        self._price = price
        self._starts = sorted(
            {
                tier.start
                for value in vars(price).values()
                if isinstance(value, TieredPrices)
                for tier in value.tiers
            }
        )
        self._tiers: dict[int, tuple[float, float, float, float, float]] = {}
        self._fee: Decimal | None = None

    def cost(self, inp: int, out: int, read: int, write: int) -> float:
        starts = self._starts
        tier = _bisect_left(starts, inp + read + write) if starts else 0
        rates = self._tiers.get(tier)
        if rates is None:
            rates = self._tiers[tier] = self._measure(tier)
        fee, a, b, c, d = rates
        return fee + a * inp + b * out + c * read + d * write

    def _probe(self, inp: int, out: int, read: int, write: int) -> Decimal:
        from decimal import Decimal

        from genai_prices import Usage

        usage = Usage(
            input_tokens=inp + read + write,
            output_tokens=out,
            cache_read_tokens=read,
            cache_write_tokens=write,
        )
        return Decimal(self._price.calc_price(usage)["total_price"])

    def _measure(self, tier: int) -> tuple[float, float, float, float, float]:
        fee = self._fee
        if fee is None:
            fee = self._fee = self._probe(0, 0, 0, 0)  # a request's own price, in every tier
        # Tier k holds the totals t with starts[k-1] < t <= starts[k].
        low = self._starts[tier - 1] + 1 if tier else 1
        high = self._starts[tier] if tier < len(self._starts) else None
        if high is not None and low > high:  # a tier starting at 0: only a zero input is below
            return (float(fee), 0.0, float(self._probe(0, 1, 0, 0) - fee), 0.0, 0.0)
        base = self._probe(low, 0, 0, 0)
        per_input = (base - fee) / low
        rest = fee + per_input * (low - 1)
        return (
            float(fee),
            float(per_input),
            float(self._probe(low, 1, 0, 0) - base),
            float(self._probe(low - 1, 0, 1, 0) - rest),
            float(self._probe(low - 1, 0, 0, 1) - rest),
        )


class _Model:
    """One model of the price table: its rates, or its dated prices' rates.

    A dated price (one from a start date on, or at some hours of the day) is chosen again
    once per wall-clock second: the table's dates and hours fall on whole seconds.
    """

    __slots__ = ("_dated", "_fixed", "_info", "_second")

    def __init__(self, info: Any) -> None:
        self._info = info
        self._fixed = None if isinstance(info.prices, list) else _Rates(info.prices)
        self._dated: list[_Rates] = []
        self._second: tuple[int, _Rates] | None = None

    def rates(self) -> _Rates:
        if self._fixed is not None:
            return self._fixed
        second = int(time.time())
        last = self._second
        if last is not None and last[0] == second:
            return last[1]
        from datetime import UTC, datetime

        price = self._info.get_prices(datetime.fromtimestamp(second, tz=UTC))
        for rates in self._dated:
            if rates._price is price:
                break
        else:
            rates = _Rates(price)
            self._dated.append(rates)
        self._second = (second, rates)
        return rates


def _find(snapshot: Any, provider: str | None, model: str) -> Any:
    """genai-prices' model for ``model`` of ``provider`` (None: the provider whose names
    match), or None. Done here rather than by ``DataSnapshot.find_provider_model``, which
    remembers every name it is asked about, unknown ones included, without bound; the same
    rules, LiteLLM's ``vendor/model`` names included (the vendor's model when the vendor is
    a provider of the table, else the name as a whole, as any provider's)."""
    from genai_prices.data_snapshot import find_provider_by_id

    providers = snapshot.providers
    ref = model.lower()
    litellm = provider is not None and provider.lower() == "litellm"
    if litellm and "/" in ref:
        vendor, rest = ref.split("/", 1)
        if vendor and find_provider_by_id(providers, vendor) is not None:
            provider, ref, litellm = vendor, rest, False
    found = None if provider is None else find_provider_by_id(providers, provider)
    if found is None and (provider is None or litellm):
        found = next(
            (p for p in providers if p.model_match is not None and p.model_match.is_match(ref)),
            None,
        )
    return None if found is None else found.find_model(ref, all_providers=providers)


@functools.lru_cache(maxsize=LOOKUP_CACHE_SIZE)
def _lookup(provider: str, model: str) -> _Model | None:
    """The table's model for ``(provider, model)``, or None (logged) when it has none."""
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    attempts: list[tuple[str | None, str]] = [(provider or None, model)]
    if not provider and "/" in model:
        attempts.insert(0, split_model(model))
    for provider_id, name in attempts:
        info = _find(snapshot, provider_id, name)
        if info is not None:
            return _Model(info)
    logger.debug("no price for model %r of provider %r; cost 0.0", model, provider)
    return None


class _Table:
    """genai-prices' current price table: ``_lookup``'s answers are dropped when genai-prices
    swaps in another one (updated prices)."""

    __slots__ = ("get_snapshot", "snapshot")

    def __init__(self) -> None:
        self.get_snapshot: Callable[[], object] | None = None
        self.snapshot: object = None

    def model(self, provider: str, model: str) -> _Model | None:
        get = self.get_snapshot
        if get is None:
            from genai_prices import data_snapshot

            get = self.get_snapshot = data_snapshot.get_snapshot
        snapshot = get()
        if snapshot is not self.snapshot:
            _lookup.cache_clear()
            self.snapshot = snapshot
        return _lookup(provider, model)


_table = _Table()


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
    With an empty ``provider``, a ``'provider/model'`` name is looked up under that
    provider first, then as a whole. A ``provider`` or ``model`` that is not a ``str``
    (``None``) raises ``TypeError``, as do non-int token counts; negative counts raise
    ``ValueError``.
    """
    if type(model) is not str or type(provider) is not str:
        for name, value in (("model", model), ("provider", provider)):
            if not isinstance(value, str):
                raise TypeError(f"{name} must be str, not {type(value).__name__}")
    if not (
        type(input_tokens) is int
        and type(output_tokens) is int
        and type(cache_read_tokens) is int
        and type(cache_write_tokens) is int
        and input_tokens >= 0
        and output_tokens >= 0
        and cache_read_tokens >= 0
        and cache_write_tokens >= 0
    ):
        _check_tokens(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
        )
    if oauth:
        return 0.0
    if prices:
        key = f"{provider}/{model}"
        custom = prices.get(key)
        if custom is None:
            key, custom = model, prices.get(model)
        if custom is not None:
            if type(custom) is not ModelPrice and not isinstance(custom, ModelPrice):
                raise TypeError(
                    f"prices[{key!r}] must be a kithooks.ModelPrice, not {type(custom).__name__}"
                )
            return custom.cost(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
    found = _table.model(provider, model)
    if found is None:
        return 0.0
    return found.rates().cost(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)


@attrs.frozen(kw_only=True)
class Usage:
    """The tokens of one LLM call, in the original's convention: ``input_tokens`` excludes
    cache reads and cache writes. Hosts hand it to ``hosting.step_events`` and
    ``Turn.step_finish``; ``counts()`` gives the four counts as keyword arguments."""

    input_tokens: int = attrs.field(default=0, validator=_count)
    output_tokens: int = attrs.field(default=0, validator=_count)
    cache_read_tokens: int = attrs.field(default=0, validator=_count)
    cache_write_tokens: int = attrs.field(default=0, validator=_count)

    def counts(self) -> dict[str, int]:
        """The four counts by name (the keyword arguments of ``compute_cost`` and friends)."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }


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
