"""Usage budget: per-call usage lines, a running session total, a soft cap, turn reports.

A port of KIT's ``usage-budget`` example, showing the three primitives together:

1. ``on_llm_usage``: one line per LLM call with provider, model, tokens and cost, and the
   running session total kept in the state store (``usage-budget:total-cost``).
2. The state store: the soft cap lives under ``usage-budget:warn-at-usd`` (default 0.50,
   set once per session), so a user can change it with ``kithooks state set``.
3. The enriched ``agent_end``: a per-turn report of tools, LLM calls, tokens, cost and
   duration, without any bookkeeping of its own.
"""

from __future__ import annotations

from kithooks import AgentEndEvent, Context, LLMUsageEvent, SessionStartEvent, hookimpl

TOTAL_KEY = "usage-budget:total-cost"
WARN_AT_KEY = "usage-budget:warn-at-usd"
DEFAULT_WARN_AT = "0.50"


def _float_state(ctx: Context, key: str, default: float) -> float:
    raw = ctx.get_state(key)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        ctx.print_error(f"[usage] ignoring {key}={raw!r}: not a number")
        return default


@hookimpl
def on_session_start(event: SessionStartEvent, ctx: Context) -> None:
    """Set the default soft cap once per session."""
    if ctx.get_state(WARN_AT_KEY) is None:
        ctx.set_state(WARN_AT_KEY, DEFAULT_WARN_AT)


@hookimpl
def on_llm_usage(event: LLMUsageEvent, ctx: Context) -> None:
    """Print the call's usage, add its cost to the session total, warn over the cap."""
    ctx.print(
        f"[usage] step={event.step_number} {event.provider}/{event.model} "
        f"tokens=↑{event.input_tokens} ↓{event.output_tokens} "
        f"cache=↑{event.cache_write_tokens}/↓{event.cache_read_tokens} "
        f"cost=${event.cost:.4f} ({event.finish_reason})"
    )
    total = _float_state(ctx, TOTAL_KEY, 0.0) + event.cost
    ctx.set_state(TOTAL_KEY, f"{total:.6f}")
    warn_at = _float_state(ctx, WARN_AT_KEY, float(DEFAULT_WARN_AT))
    if total > warn_at:
        ctx.print_error(f"[usage] session cost ${total:.4f} exceeds soft cap ${warn_at:.2f}")


@hookimpl
def on_agent_end(event: AgentEndEvent, ctx: Context) -> None:
    """Print the turn's report from the enriched agent_end."""
    ctx.print(
        f"[turn] stop={event.stop_reason} tools={event.tool_call_count} "
        f"llm-calls={event.llm_call_count} tokens=↑{event.input_tokens_delta} "
        f"↓{event.output_tokens_delta} cost=${event.cost_delta:.4f} "
        f"duration={event.duration_ms}ms"
    )
    if event.tool_names:
        ctx.print(f"[turn] tool order: {', '.join(event.tool_names)}")
