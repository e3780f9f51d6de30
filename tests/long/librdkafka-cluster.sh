#!/usr/bin/env bash
# librdkafka-cluster.sh - librdkafka's own integration suite against a three-broker cluster:
# the README's "Run a cluster" recipe (config/cluster/broker-N.properties, two shards each,
# every broker a voter), with all three brokers as bootstrap, and the same test selection that
# tests/run.sh runs against one broker (B0_PASSING, B_COORD and C_PASSING, read from it).
#
# Broker N sits in rack RACK<N>000 (the node id of its first shard) and the brokers use Kafka's
# RackAwareReplicaSelector, as 0101_fetch_from_follower expects of upstream's trivup cluster: it
# sets its consumer's client.rack to "RACK<node id of a follower>", so it reads from that
# follower when the partition's replicas are on first shards (as on a fresh cluster, where
# placement fills shard 0 first). Consumers without client.rack (every other test) still read
# from leaders.
#
# Usage: tests/long/librdkafka-cluster.sh [--short]
#   --short  only the B0_PASSING tests (no consumer groups)
# Environment (all optional):
#   SLUICE_CLUSTER_PORT_BASE  broker N uses client ports BASE+N*100+92 (and +93 for its second
#                             shard), controller port BASE+N*100+99 and metrics port
#                             BASE+N*100+98 (default 19000: exactly the recipe's ports)
#   LIBRDKAFKA_SELECTION      the tests to run instead (as in tests/run.sh)
#   LIBRDKAFKA_SUITE          path of librdkafka-suite.sh
#                             (default: <dir above the repo>/shared/tools/librdkafka-suite.sh)
# Prints the suite's PASS/FAIL lines and its "N passed, M failed" line, then stops the brokers
# with SIGTERM; each must exit 0. Exit status 0 iff the suite passed and every broker stopped
# cleanly. Data and logs stay in a directory under /tmp, named at the end.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
BASE=${SLUICE_CLUSTER_PORT_BASE:-19000}
SUITE=${LIBRDKAFKA_SUITE:-$(dirname "$REPO")/shared/tools/librdkafka-suite.sh}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
BIN="$TARGET/ci/sluice"
WORK=$(mktemp -d /tmp/sluice-librdkafka-cluster.XXXXXX)

# The selection of tests/run.sh, read from it so that the two never drift apart.
eval "$(grep -E '^(B0_PASSING|B_COORD|C_PASSING)=' tests/run.sh)"
if [ "${1:-}" = --short ]; then
  SELECTION=${LIBRDKAFKA_SELECTION:-$B0_PASSING}
elif [ -z "${1:-}" ]; then
  SELECTION=${LIBRDKAFKA_SELECTION:-$B0_PASSING,$B_COORD,$C_PASSING}
else
  echo "usage: $0 [--short]" >&2; exit 2
fi

client_port() { echo $((BASE + $1 * 100 + 92)); }
controller_port() { echo $((BASE + $1 * 100 + 99)); }
VOTERS="1@127.0.0.1:$(controller_port 1),2@127.0.0.1:$(controller_port 2),3@127.0.0.1:$(controller_port 3)"
BOOTSTRAP="127.0.0.1:$(client_port 1),127.0.0.1:$(client_port 2),127.0.0.1:$(client_port 3)"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! cargo build --profile ci --bin sluice; then echo "build failed"; exit 1; fi
if [ ! -f "$SUITE" ]; then echo "librdkafka suite not found at $SUITE (set LIBRDKAFKA_SUITE)"; exit 1; fi
for n in 1 2 3; do
  for port in $(client_port "$n") $(($(client_port "$n") + 1)) $(controller_port "$n"); do
    if port_open "$port"; then
      echo "127.0.0.1:$port is already in use (set SLUICE_CLUSTER_PORT_BASE)"; exit 1
    fi
  done
done

for n in 1 2 3; do
  args=(start --config "config/cluster/broker-$n.properties" --cores 2
        --set "listeners=PLAINTEXT://127.0.0.1:$(client_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")"
        --set "controller.quorum.voters=$VOTERS"
        --set "metrics.listener=127.0.0.1:$((BASE + n * 100 + 98))"
        --set "log.dirs=$WORK/data-$n"
        --set num.partitions=4
        --set "broker.rack=RACK${n}000"
        --set replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector)
  echo "+ $BIN ${args[*]}   (log: $WORK/broker-$n.log)"
  NO_COLOR=1 RUST_LOG=${RUST_LOG:-info} "$BIN" "${args[@]}" >"$WORK/broker-$n.log" 2>&1 &
  PIDS+=($!)
done

# Up when every broker is registered and unfenced: `sluice cluster status` lists three
# unfenced brokers (and so has a quorum leader).
up=0
for _ in $(seq 900); do
  status=$("$BIN" cluster status --json -b "$BOOTSTRAP" --timeout-ms 2000 2>/dev/null) || status=
  if [ -n "$status" ] && [ "$(grep -o '"fenced":false' <<<"$status" | wc -l)" -eq 3 ]; then
    up=1; break
  fi
  sleep 0.1
done
if [ $up = 0 ]; then
  echo "the cluster did not come up within 90 s; broker logs:"
  for n in 1 2 3; do echo "--- broker $n"; tail -n 30 "$WORK/broker-$n.log"; done
  exit 1
fi
"$BIN" cluster status -b "$BOOTSTRAP"

echo "+ $SUITE $BOOTSTRAP $SELECTION"
bash "$SUITE" "$BOOTSTRAP" "$SELECTION" 2>&1 | tee "$WORK/librdkafka.log"
rc=${PIPESTATUS[0]}

# SIGTERM all three at once (controlled shutdowns); each must exit 0 within 60 s.
for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
for i in 0 1 2; do
  pid=${PIDS[$i]}
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "broker $((i + 1)) still running 60 s after SIGTERM"; rc=1
  else
    wait "$pid"; st=$?
    if [ "$st" -ne 0 ]; then echo "broker $((i + 1)) exited with $st after SIGTERM"; rc=1; fi
  fi
done
PIDS=()
echo "logs and data: $WORK"
exit "$rc"
