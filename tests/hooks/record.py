#!/usr/bin/env python3
"""Any hook: appends what it saw (stdin, cwd, $CLAUDE_PROJECT_DIR) as one JSON line to $1."""

import json
import os
import sys

seen = {
    "stdin": json.load(sys.stdin),
    "cwd": os.getcwd(),
    "project_dir": os.environ.get("CLAUDE_PROJECT_DIR"),
}
with open(sys.argv[1], "a", encoding="utf-8") as out:
    out.write(json.dumps(seen) + "\n")
