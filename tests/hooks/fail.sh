#!/usr/bin/env bash
# Any hook: a non-blocking error (exit 1).
cat > /dev/null
echo "linter crashed" >&2
exit 1
