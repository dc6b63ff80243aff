#!/usr/bin/env python3
"""Stop: keep the agent going once ("run the tests"), unless a Stop hook already did."""

import json
import sys

if not json.load(sys.stdin)["stop_hook_active"]:
    print("run the tests", file=sys.stderr)
    sys.exit(2)
