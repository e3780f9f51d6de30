#!/usr/bin/env bash
# tests/run.sh - Sluice's whole test suite, the one command CI runs.
#
#   1. cargo test --profile ci --workspace --no-fail-fast   (unit tests of every crate and the
#      end-to-end tests in tests/*.rs, which start real `sluice` processes)
#   2. a `sluice` broker on 127.0.0.1:$SLUICE_TEST_PORT (--set num.partitions=4,
#      a temporary data dir), and librdkafka's own integration suite against it
#      (../shared/tools/librdkafka-suite.sh, selection $LIBRDKAFKA_SELECTION)
#   3. the broker is stopped with SIGTERM and must exit 0
#   4. a one-shard broker on 127.0.0.1:$SLUICE_TEST_PORT+100 and the non-ACL subtests of
#      librdkafka's 0081_admin against it (tests/librdkafka-admin.sh), then a clean stop
#   5. the README's three-broker cluster and librdkafka's b0 tests against all three
#      (tests/long/librdkafka-cluster.sh --short; its ports: SLUICE_CLUSTER_PORT_BASE)
#
# Exits non-zero if anything failed. Environment (all optional):
#   LIBRDKAFKA_SELECTION  librdkafka tests to run (default: the b and c tests that pass today,
#                         see B0_PASSING, B_COORD, C_PASSING); e.g. "c" for all, "0012,0030"
#                         to narrow
#   LIBRDKAFKA_SUITE      path of librdkafka-suite.sh
#                         (default: <dir above the repo>/shared/tools/librdkafka-suite.sh)
#   SKIP_CARGO_TESTS=1    skip step 1
#   SKIP_LIBRDKAFKA=1     skip steps 2-4
#   SKIP_ADMIN_SUBTESTS=1 skip step 4
#   SKIP_CLUSTER_SUITE=1  skip step 5
#   SLUICE_TEST_PORT      listener port for step 2 (default 9092; step 4 uses it + 100)
#   SLUICE_CORES          --cores for the step-2 broker (default: the broker's default)
#   CARGO_TEST_ARGS       extra arguments after `cargo test ... --` (e.g. a test name filter)
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# Category b (one broker): first the tests that need no group coordinator (b0), then those
# whose KafkaConsumer uses group.id with assign(). 0028 and 0047 are known-issue tests the
# runner always skips.
B0_PASSING=0001,0002,0003,0005,0007,0008,0011,0012,0013,0017,0021,0031,0035,0036,0038,0039,0041,0044,0048,0054,0057,0063,0065,0075,0088,0110,0114,0123
B_COORD=0015,0034,0051,0053,0059,0067,0070,0073,0085,0112,0125,0127
# Category c (consumer groups) minus 0081_admin (sizes replica sets by node count, and its ACL
# subtests need an authorizer: step 4 runs its other subtests against a one-shard broker),
# 0092_mixed_msgver (message.format.version=0.10.0 and down-conversion to message format v1,
# both removed in Kafka 4 and not in Sluice) and
# 0113_cooperative_rebalance (its full mode ends in a Java interop subtest that needs a Kafka
# distribution; the librdkafka subtests before it pass).
C_PASSING=0014,0018,0019,0020,0022,0026,0029,0030,0033,0040,0042,0045_subscribe_update,0045_resubscribe_with_regex,0045_subscribe_many_updates,0049,0050,0056,0060,0064,0069,0082,0083,0084,0089,0091,0093,0099,0102,0118,0122,0130,0132,0140,0153
SELECTION=${LIBRDKAFKA_SELECTION:-$B0_PASSING,$B_COORD,$C_PASSING}
SUITE=${LIBRDKAFKA_SUITE:-$(dirname "$REPO")/shared/tools/librdkafka-suite.sh}
PORT=${SLUICE_TEST_PORT:-9092}
ADMIN_PORT=$((PORT + 100))
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
BIN="$TARGET/ci/sluice"
LOGDIR=$(mktemp -d /tmp/sluice-run.XXXXXX)

PASSED=0
FAILED=0
STEPS=()
say() { printf '\n=== %s\n' "$*"; }
record() { # name rc
  if [ "$2" -eq 0 ]; then STEPS+=("ok      $1"); else STEPS+=("FAILED  $1 (exit $2)"); fi
}

BROKER_PID=
cleanup() {
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -KILL "$BROKER_PID" 2>/dev/null
  fi
}
trap cleanup EXIT

# --- 1. cargo tests -----------------------------------------------------------
if [ "${SKIP_CARGO_TESTS:-0}" != 1 ]; then
  say "step 1: cargo test --profile ci --workspace --no-fail-fast"
  # shellcheck disable=SC2086
  cargo test --profile ci --workspace --no-fail-fast -- ${CARGO_TEST_ARGS:-} 2>&1 | tee "$LOGDIR/cargo-test.log"
  rc=${PIPESTATUS[0]}
  # Count the test results of every test binary.
  read -r p f < <(awk '/^test result:/ {
        for (i = 1; i <= NF; i++) {
          if ($(i+1) ~ /^passed/) p += $i
          if ($(i+1) ~ /^failed/) f += $i
        }
      } END { print p + 0, f + 0 }' "$LOGDIR/cargo-test.log")
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then FAILED=$((FAILED + 1)); fi  # build failure etc.
  record "cargo test ($p passed, $f failed)" "$rc"
else
  say "step 1: skipped (SKIP_CARGO_TESTS=1)"
fi

# --- broker helpers -------------------------------------------------------------
# start_broker NAME PORT [sluice start args...]: starts a broker on 127.0.0.1:PORT with a fresh
# data dir under $LOGDIR, logging to $LOGDIR/NAME.log; sets BROKER_PID. Fails (and records
# the failure) if the port is taken or the broker does not come up within 60 s.
start_broker() {
  local name=$1 port=$2; shift 2
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "127.0.0.1:$port is already in use (set SLUICE_TEST_PORT)"
    record "port $port free" 1; FAILED=$((FAILED + 1)); return 1
  fi
  local args=(start --set "listeners=PLAINTEXT://127.0.0.1:$port"
              --set "log.dirs=$LOGDIR/$name-data" --set "metrics.listener=" "$@")
  echo "+ $BIN ${args[*]}   (log: $LOGDIR/$name.log)"
  RUST_LOG=${RUST_LOG:-info} "$BIN" "${args[@]}" > "$LOGDIR/$name.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 600); do
    kill -0 "$BROKER_PID" 2>/dev/null || break
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "sluice ($name) did not come up on 127.0.0.1:$port; its log:"
  tail -n 50 "$LOGDIR/$name.log"
  record "start sluice ($name)" 1; FAILED=$((FAILED + 1))
  kill -KILL "$BROKER_PID" 2>/dev/null; BROKER_PID=
  return 1
}

# stop_broker NAME: SIGTERM, and the broker must exit 0 within 60 s (counted as a test).
stop_broker() {
  local name=$1 rc
  if kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID"
    for _ in $(seq 600); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$BROKER_PID" 2>/dev/null; then
      echo "sluice ($name) still running 60 s after SIGTERM"
      kill -KILL "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
      rc=124
    else
      wait "$BROKER_PID"; rc=$?
    fi
  else
    wait "$BROKER_PID"; rc=$?
    echo "sluice ($name) died during the tests (exit $rc)"
    [ "$rc" -eq 0 ] && rc=1
  fi
  BROKER_PID=
  if [ "$rc" -ne 0 ]; then
    echo "broker log (tail):"; tail -n 50 "$LOGDIR/$name.log"
    FAILED=$((FAILED + 1))
  else
    PASSED=$((PASSED + 1))
  fi
  record "sluice clean shutdown ($name)" "$rc"
}

# count_results LOG: adds the last "N passed, M failed" line of LOG to the totals and
# records step $2 with the exit code $3.
count_results() {
  local log=$1 step=$2 rc=$3 p= f=
  read -r p f < <(sed -n 's/^\([0-9]\+\) passed, \([0-9]\+\) failed$/\1 \2/p' "$log" | tail -n 1)
  p=${p:-0}; f=${f:-0}
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then FAILED=$((FAILED + 1)); fi
  record "$step ($p passed, $f failed)" "$rc"
}

# --- 2. librdkafka's suite against a real broker --------------------------------
if [ "${SKIP_LIBRDKAFKA:-0}" != 1 ]; then
  say "step 2: librdkafka suite ($SELECTION) against sluice on 127.0.0.1:$PORT"
  ok=1
  if ! cargo build --profile ci --bin sluice; then
    record "build sluice" 1; FAILED=$((FAILED + 1)); ok=0
  elif [ ! -f "$SUITE" ]; then
    echo "librdkafka suite not found at $SUITE (set LIBRDKAFKA_SUITE)"
    record "librdkafka suite present" 1; FAILED=$((FAILED + 1)); ok=0
  fi
  CORES_ARGS=()
  [ -n "${SLUICE_CORES:-}" ] && CORES_ARGS=(--cores "$SLUICE_CORES")
  if [ $ok = 1 ] && start_broker broker "$PORT" --set num.partitions=4 "${CORES_ARGS[@]}"; then
    echo "+ $SUITE 127.0.0.1:$PORT $SELECTION"
    bash "$SUITE" "127.0.0.1:$PORT" "$SELECTION" 2>&1 | tee "$LOGDIR/librdkafka.log"
    count_results "$LOGDIR/librdkafka.log" "librdkafka suite $SELECTION" "${PIPESTATUS[0]}"

    # --- 3. clean shutdown ------------------------------------------------------
    say "step 3: SIGTERM the broker, expect exit code 0"
    stop_broker broker
  fi

  # --- 4. 0081_admin's non-ACL subtests against a one-shard broker ----------------
  # 0081 creates topics with as many replicas as the cluster has nodes; every shard is a node
  # and Sluice does not replicate yet, so it runs against a broker with one shard. Its ACL
  # subtests need an authorizer Sluice does not have; tests/librdkafka-admin.sh runs the rest.
  if [ $ok = 1 ] && [ "${SKIP_ADMIN_SUBTESTS:-0}" != 1 ]; then
    say "step 4: librdkafka 0081_admin (non-ACL subtests) against a one-shard sluice on 127.0.0.1:$ADMIN_PORT"
    if start_broker admin-broker "$ADMIN_PORT" --cores 1 --set num.partitions=4; then
      bash tests/librdkafka-admin.sh "127.0.0.1:$ADMIN_PORT" 2>&1 | tee "$LOGDIR/librdkafka-admin.log"
      count_results "$LOGDIR/librdkafka-admin.log" "librdkafka 0081_admin non-ACL subtests" "${PIPESTATUS[0]}"
      stop_broker admin-broker
    fi
  fi

  # --- 5. librdkafka's suite against a three-broker cluster (short) ---------------
  # The README's "Run a cluster" recipe with all three brokers as bootstrap; CI runs the b0
  # tests, tests/long/librdkafka-cluster.sh without --short runs the whole selection.
  if [ $ok = 1 ] && [ "${SKIP_CLUSTER_SUITE:-0}" != 1 ]; then
    say "step 5: librdkafka suite (b0) against a three-broker cluster (tests/long/librdkafka-cluster.sh --short)"
    LIBRDKAFKA_SUITE="$SUITE" bash tests/long/librdkafka-cluster.sh --short 2>&1 | tee "$LOGDIR/librdkafka-cluster.log"
    count_results "$LOGDIR/librdkafka-cluster.log" "librdkafka suite b0 against a 3-broker cluster" "${PIPESTATUS[0]}"
  fi
else
  say "step 2: skipped (SKIP_LIBRDKAFKA=1)"
fi

say "summary (logs in $LOGDIR)"
for s in "${STEPS[@]}"; do echo "  $s"; done
echo "tests: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
