#!/usr/bin/env bash
# replication-acceptance.sh - issue 12's one-failure-at-a-time acceptance tests
# (tests/replication.rs), run RUNS times in a row to show they are not flaky:
#   * rolling_restart: SIGTERM of each of three brokers in turn under an idempotent acks=all
#     load; 0 failed deliveries, every acknowledged record read back once, in order;
#   * min_insync_replicas: the ISR down to the leader alone gets NOT_ENOUGH_REPLICAS for
#     acks=all while acks=1 works, and acks=all works again once the ISR is full;
#   * leader_failover: kill -9 of a leader; a new leader from the ISR in a higher epoch keeps
#     every acknowledged record, and the restarted old leader's log is byte-identical to the
#     new leader's up to the high watermark;
#   * group_failover: kill -9 of a group's coordinator; the group commits to the new one and
#     a new member resumes exactly at the committed offsets.
#
# It prints a table: per test, passes out of runs, and the shortest, median and longest
# duration (from each test's `acceptance summary:` line, printed when it passed), then each
# run's summary lines.
#
# Usage: tests/long/replication-acceptance.sh [RUNS]   (default 5)
# Exit status: 0 when every run of every test passed. The whole output is kept in a log under
# /tmp, named at the end.
set -uo pipefail

RUNS=${1:-5}
case "$RUNS" in
  ''|*[!0-9]*|0) echo "usage: $0 [RUNS]" >&2; exit 2 ;;
esac
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
LOG=$(mktemp /tmp/sluice-replication-acceptance.XXXXXX.log)

echo "replication acceptance: $RUNS runs (log: $LOG)"
if ! cargo build --profile ci --bin sluice --test replication >"$LOG" 2>&1; then
  tail -n 30 "$LOG"; echo "build failed"; exit 1
fi
failed_runs=0
for run in $(seq 1 "$RUNS"); do
  echo "===== run $run" >>"$LOG"
  if cargo test --profile ci --test replication -- --test-threads=1 --nocapture >>"$LOG" 2>&1
  then echo "run $run: ok"
  else echo "run $run: FAILED"; failed_runs=$((failed_runs + 1))
  fi
done

# A test passed in a run when it printed its summary line (its last act); its name is in
# libtest's `failures:` list when it failed. Durations come from the summary lines.
awk -v runs="$RUNS" '
  /^failures:$/ { in_failures = 1; next }
  in_failures && /^    [a-z0-9_:]+$/ { failed[$1]++; seen[$1] = 1; next }
  { in_failures = 0 }
  /^acceptance summary:/ {
    name = ""; secs = ""
    for (i = 3; i <= NF; i++) {
      split($i, kv, "=")
      if (kv[1] == "test") name = kv[2]
      if (kv[1] == "seconds") secs = kv[2]
    }
    seen[name] = 1; n[name]++; d[name, n[name]] = secs + 0
  }
  END {
    printf "\n%-75s %7s %6s %8s %6s\n", "test", "passed", "min s", "median s", "max s"
    for (t in seen) {
      m = n[t] + 0
      for (i = 1; i <= m; i++) a[i] = d[t, i]
      for (i = 1; i <= m; i++)
        for (j = i + 1; j <= m; j++)
          if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
      if (m > 0)
        printf "%-75s %3d/%-3d %6.1f %8.1f %6.1f\n", t, m, runs, a[1], a[int((m + 1) / 2)], a[m]
      else
        printf "%-75s %3d/%-3d %6s %8s %6s\n", t, 0, runs, "-", "-", "-"
    }
  }' "$LOG"
echo
grep -E '^acceptance summary:' "$LOG"
echo "log: $LOG"
[ "$failed_runs" -eq 0 ]
