import kithooks


class PermissionGate:
    """Blocks dangerous shell commands and reports each turn."""

    @kithooks.hookimpl
    def on_tool_call(self, event: kithooks.ToolCallEvent, ctx: kithooks.Context):
        command = (event.parsed_args or {}).get("command", "")
        if event.tool_name == "bash" and "rm -rf" in command:
            return kithooks.ToolCallResult(block=True, reason="rm -rf is not allowed")
        return None

    @kithooks.hookimpl
    def on_agent_end(self, event: kithooks.AgentEndEvent, ctx: kithooks.Context):
        ctx.print(f"{event.tool_call_count} tools, ${event.cost_delta:.4f}")
