#!/usr/bin/env bash
# replication-chaos.sh - issue 12's long replication run, Jepsen style: three brokers with two
# shards each, a topic with replication factor 3 and min.insync.replicas=2, an idempotent
# acks=all producer and a consumer group writing and reading throughout, while
#   * chase: the broker leading the most partitions is killed with `kill -9` LEADER_KILLS times
#     (restarted each time), then the active controller CONTROLLER_KILLS times;
#   * pause: the broker leading the most partitions is paused (SIGSTOP) for twice
#     broker.session.timeout.ms, PAUSES times, then resumed (SIGCONT).
# At the end of each: no acknowledged record lost or misplaced (the table counts both as
# lost), none duplicated, no holes, no read that vanished, every resume at the committed
# offsets, every replica byte-identical to its leader up to the high watermark, and every fault
# recovered from.
#
# It runs the two tests of tests/replication_chaos.rs one after the other, prints one line per
# fault and a summary table (one row per scenario).
#
# Usage: tests/long/replication-chaos.sh [--short | LEADER_KILLS CONTROLLER_KILLS [PAUSES]]
#   defaults 30 10 3; --short: 3 1 1, as CI runs it.
# Other knobs pass through the environment (see Scenario::from_env in
# tests/common/chaos/mod.rs): SLUICE_CHAOS_RF, SLUICE_CHAOS_MIN_ISR, SLUICE_CHAOS_PARTITIONS,
# SLUICE_CHAOS_RATE, SLUICE_CHAOS_MAX_DOWN_MS, SLUICE_CHAOS_PAUSE_MS, SLUICE_CHAOS_FAILOVER_MS,
# SLUICE_CHAOS_SEED.
# Exit status: that of the tests (0 = every check passed). The whole output is kept in a log
# under /tmp, named at the end.
set -uo pipefail

LEADER_KILLS=30
CONTROLLER_KILLS=10
PAUSES=3
number() { case "$1" in ''|*[!0-9]*) return 1 ;; esac; }
case "${1:-}" in
  "") ;;
  --short) LEADER_KILLS=3 CONTROLLER_KILLS=1 PAUSES=1 ;;
  *)
    if ! number "$1" || ! number "${2:-}" || { [ $# -ge 3 ] && ! number "$3"; } || [ $# -gt 3 ]; then
      echo "usage: $0 [--short | LEADER_KILLS CONTROLLER_KILLS [PAUSES]]" >&2
      exit 2
    fi
    LEADER_KILLS=$1 CONTROLLER_KILLS=$2 PAUSES=${3:-$PAUSES}
    ;;
esac
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
LOG=$(mktemp /tmp/sluice-replication-chaos.XXXXXX.log)

echo "replication chaos: $LEADER_KILLS leader kills, $CONTROLLER_KILLS controller kills," \
  "$PAUSES pauses (log: $LOG)"
if ! cargo build --profile ci --bin sluice >"$LOG" 2>&1; then
  tail -n 30 "$LOG"; echo "build failed"; exit 1
fi
SLUICE_CHAOS_LEADER_KILLS=$LEADER_KILLS SLUICE_CHAOS_CONTROLLER_KILLS=$CONTROLLER_KILLS \
  SLUICE_CHAOS_PAUSES=$PAUSES \
  cargo test --profile ci --test replication_chaos -- --test-threads=1 --nocapture \
  >>"$LOG" 2>&1
rc=$?

# The fault lines, then the summary lines (`chaos summary: key=value ...`) as a table.
grep -oE '(chaos scenario: .*|^fault [0-9]+/[0-9]+: .*)' "$LOG"
echo
grep -E '^chaos summary:' "$LOG" | sort -u | awk '
  BEGIN {
    printf "%-8s %3s %6s %6s %6s %10s %6s %6s %5s %5s %9s %8s %9s %10s\n",
      "scenario", "rf", "leader", "ctrl", "pauses", "acked", "failed", "lost", "dup",
      "holes", "vanished", "resume", "divergent", "slowest_ms"
  }
  {
    delete v
    for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "%-8s %3s %6s %6s %6s %10s %6s %6s %5s %5s %9s %8s %9s %10s\n",
      v["scenario"], v["rf"], v["leader_kills"], v["controller_kills"], v["pauses"],
      v["acknowledged"], v["failed"], v["lost"] + v["misplaced"], v["duplicated"], v["holes"],
      v["vanished"], v["resume_skipped"] + v["resume_rewound"], v["divergent_replicas"],
      v["slowest_failover_ms"]
  }'
if [ "$rc" -ne 0 ]; then
  echo
  echo "FAILED (exit $rc):"
  grep -E '^(FAILED:|thread .* panicked)' "$LOG" | sort -u | head -n 40
fi
echo "log: $LOG"
exit "$rc"
