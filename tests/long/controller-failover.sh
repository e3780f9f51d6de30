#!/usr/bin/env bash
# controller-failover.sh - the long controller failover run: a cluster of three brokers with two
# shards each (README "Run a cluster", on free ports), whose active controller is killed with
# `kill -9` KILLS times while a client loops over CreateTopics, IncrementalAlterConfigs and
# DeleteTopics. After every kill a new controller must be elected in a higher epoch and the
# killed node must restart and catch up; at the end every acknowledged change must be visible
# on every shard of every broker, and no epoch may have had two leaders.
#
# It runs the test `controller_failover_keeps_every_acknowledged_change` of tests/cluster.rs
# with SLUICE_FAILOVER_KILLS=KILLS and prints one line per kill (election time, catch-up
# time) and the final verification summary.
#
# Usage: tests/long/controller-failover.sh [--short | KILLS]
#   KILLS    number of controller kills (default 20)
#   --short  3 kills, as the CI run of tests/cluster.rs does
# Exit status: that of the test (0 = every check passed). The whole output is kept in a log
# under /tmp, named at the end.
set -uo pipefail

KILLS=20
case "${1:-}" in
  "") ;;
  --short) KILLS=3 ;;
  *[!0-9]*|0) echo "usage: $0 [--short | KILLS]" >&2; exit 2 ;;
  *) KILLS=$1 ;;
esac
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
LOG=$(mktemp /tmp/sluice-controller-failover.XXXXXX.log)

echo "controller failover: $KILLS kills of the active controller (log: $LOG)"
if ! cargo build --profile ci --bin sluice >"$LOG" 2>&1; then
  tail -n 30 "$LOG"; echo "build failed"; exit 1
fi
SLUICE_FAILOVER_KILLS=$KILLS cargo test --profile ci --test cluster -- \
  --exact controller_failover_keeps_every_acknowledged_change --nocapture >>"$LOG" 2>&1
rc=$?
grep -E '^(kill [0-9]+/[0-9]+:|failover summary:)' "$LOG"
if [ "$rc" -ne 0 ]; then
  echo "FAILED (exit $rc); the test's output:"
  grep -E 'panicked at|^thread|assert' -A 6 "$LOG" | head -n 60
fi
echo "log: $LOG"
exit "$rc"
