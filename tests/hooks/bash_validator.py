#!/usr/bin/env python3
"""A PreToolUse hook in the style of Claude Code's published bash-command validator.

Configure it for the Bash tool:

    {"hooks": {"PreToolUse": [{"matcher": "Bash",
        "hooks": [{"type": "command", "command": "python3 /path/to/bash_validator.py"}]}]}}

It reads the hook input from stdin, and blocks (exit code 2, the reasons on stderr) shell
commands that have a faster or better replacement.
"""

import json
import re
import sys

RULES = [
    (
        re.compile(r"^\s*grep\b(?!.*\|)"),
        "Prefer 'rg' (ripgrep) to 'grep': faster, and it honours .gitignore",
    ),
    (re.compile(r"^\s*find\s+\S+\s+-name\b"), "Prefer 'rg --files -g PATTERN' to 'find -name'"),
]


def problems(command):
    return [why for pattern, why in RULES if pattern.search(command)]


def main():
    try:
        hook_input = json.load(sys.stdin)
    except json.JSONDecodeError as exc:
        print(f"bad hook input: {exc}", file=sys.stderr)
        sys.exit(1)  # a non-blocking error: the call goes on
    if hook_input.get("tool_name") != "Bash":
        sys.exit(0)
    command = hook_input.get("tool_input", {}).get("command", "")
    found = problems(command)
    if found:
        for why in found:
            print(f"- {why}", file=sys.stderr)
        sys.exit(2)  # blocks the call; stderr is what the model reads


if __name__ == "__main__":
    main()
