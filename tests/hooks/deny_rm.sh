#!/usr/bin/env bash
# PreToolUse: deny commands containing "rm " with a JSON answer (exit 0).
input=$(cat)
if printf '%s' "$input" | grep -q '"command": *"rm '; then
  printf '%s\n' '{"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": "rm is not allowed here"}}'
fi
exit 0
