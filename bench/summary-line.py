#!/usr/bin/env python3
"""One line from a `sluice bench … --json` summary: msg/s, MB/s, p50/p99/p99.9 ms and errors of
the first role. Usage: summary-line.py LABEL FILE. Used by acks-ab.sh and replication-rf.sh."""
import json
import sys

label, path = sys.argv[1], sys.argv[2]
role = json.load(open(path))["roles"][0]
lat = role["latency_ms"]
errors = sum(e.get("count", 0) for e in role["errors"]) if role["errors"] else 0
print(f"{label} {role['msg_per_s']:.0f} msg/s {role['mb_per_s']:.1f} MB/s "
      f"p50 {lat['p50']:.1f} p99 {lat['p99']:.1f} p99.9 {lat['p99.9']:.1f} ms errors {errors}")
