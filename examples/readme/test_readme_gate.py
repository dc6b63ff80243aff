import kithooks
from readme_gate import PermissionGate


def test_blocks_rm_rf(kithooks_harness):
    h = kithooks_harness(PermissionGate())
    result = h.emit(kithooks.ToolCallEvent(tool_name="bash", parsed_args={"command": "rm -rf /"}))
    assert result.block and result.reason == "rm -rf is not allowed"


def test_reports_the_turn(kithooks_harness):
    h = kithooks_harness(PermissionGate())
    h.emit(kithooks.AgentStartEvent())
    h.emit(kithooks.ToolCallEvent(tool_name="read"))
    h.emit(kithooks.LLMUsageEvent(cost=0.25))
    h.emit(kithooks.AgentEndEvent())
    assert h.printed == ["1 tools, $0.2500"]


def test_meets_every_event_contract(kithooks_contract):
    kithooks_contract(PermissionGate())
