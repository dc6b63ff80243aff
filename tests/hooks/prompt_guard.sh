#!/usr/bin/env bash
# UserPromptSubmit: block prompts that mention a password (exit 2); otherwise add the
# current branch name as context (plain stdout).
input=$(cat)
if printf '%s' "$input" | grep -qi 'password'; then
  echo "Prompts must not contain passwords." >&2
  exit 2
fi
echo "Current branch: main"
