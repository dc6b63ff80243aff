#!/usr/bin/env bash
# Any hook: takes $1 seconds, then allows; appends its start time to $2.
cat > /dev/null
date +%s.%N >> "$2"
sleep "$1"
exit 0
