#!/usr/bin/env bash
# A/B of `sluice bench produce` alone between two broker binaries, run alternately (before,
# after, before, after, …), with a chosen acks (default all): used for issue 12 (bench/RESULTS.md,
# "Issue 12 (replicated partitions)"), where acks=all gained a wait for the high watermark.
#
# Usage: bench/acks-ab.sh BEFORE_BIN AFTER_BIN [ROUNDS]
# Environment: PORT (default 21692; PORT and PORT+1 must be free), DURATION (default 10),
# ACKS (default all). The load generator is always AFTER_BIN's `sluice bench`. Each run starts a
# fresh 2-shard one-node broker (replication factor 1) with 8 MiB segments and produces 1 KiB
# messages to 8 partitions for DURATION seconds. Prints one line per run: label, msg/s, MB/s,
# p50/p99/p99.9 ms, errors.
set -euo pipefail
pid=
before=$1 after=$2 rounds=${3:-2}
# Below the ephemeral range: polling a free ephemeral port can self-connect and take it.
PORT=${PORT:-21692}
DURATION=${DURATION:-10}
ACKS=${ACKS:-all}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "$*" >&2; exit 1; }
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then die "port $PORT is in use (set PORT)"; fi

run() { # label, broker binary
  local label=$1 bin=$2 dir
  dir=$(mktemp -d /tmp/sluice-acks-ab.XXXXXX)
  "$bin" start --cores 2 --set "listeners=PLAINTEXT://127.0.0.1:$PORT" \
    --set "log.dirs=$dir/data" --set log.segment.bytes=8388608 --set metrics.listener= \
    >"$dir/broker.log" 2>&1 &
  pid=$!
  trap 'kill -INT "$pid" 2>/dev/null || true' EXIT # pid is global for this trap
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null \
      && (exec 3<>"/dev/tcp/127.0.0.1/$((PORT + 1))") 2>/dev/null && break
    sleep 0.1
  done
  "$after" bench produce -b "127.0.0.1:$PORT" -t ab -p 8 -s 1024 -a "$ACKS" -d "$DURATION" -q \
    --json >"$dir/produce.json"
  kill -INT "$pid"
  wait "$pid" || true
  trap - EXIT
  python3 "$here/summary-line.py" "$label" "$dir/produce.json"
  rm -rf "$dir"
}

for round in $(seq "$rounds"); do
  run "before#$round" "$before"
  run "after#$round" "$after"
done
