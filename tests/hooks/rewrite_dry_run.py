#!/usr/bin/env python3
"""PreToolUse: add --dry-run to every 'make' command (updatedInput)."""

import json
import sys

data = json.load(sys.stdin)
command = data["tool_input"].get("command", "")
if command.startswith("make") and "--dry-run" not in command:
    new_input = dict(data["tool_input"], command=command + " --dry-run")
    print(
        json.dumps(
            {
                "hookSpecificOutput": {
                    "hookEventName": "PreToolUse",
                    "permissionDecision": "allow",
                    "updatedInput": new_input,
                }
            }
        )
    )
