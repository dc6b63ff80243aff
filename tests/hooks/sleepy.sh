#!/usr/bin/env bash
# Any hook: starts a child, records both pids in $1, then sleeps far past any timeout.
cat > /dev/null
sleep 300 &
echo "$$ $!" > "$1"
wait
