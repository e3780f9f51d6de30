#!/usr/bin/env bash
# A/B of `sluice bench produce` and `sluice bench consume` between two broker binaries, run
# alternately (before, after, before, after, …) on the same settings: used for the per-shard
# cache of sealed segments' log files (bench/RESULTS.md, "Segment file cache").
#
# Usage: bench/fd-cache-ab.sh BEFORE_BIN AFTER_BIN [ROUNDS]
# The load generator is always AFTER_BIN's `sluice bench`. Each run starts a fresh 2-shard
# broker with 8 MiB segments (so that the consumer reads sealed segments), produces 1 KiB
# messages to 8 partitions with acks=1 for DURATION seconds, then consumes from earliest for
# DURATION seconds. Prints one line per run: label, produce msg/s, MB/s, p99 ms, consume msg/s,
# MB/s, p99 ms.
set -euo pipefail
pid=
before=$1 after=$2 rounds=${3:-2}
# Below the ephemeral range: polling a free ephemeral port can self-connect and take it.
PORT=${PORT:-21592}
DURATION=${DURATION:-10}

die() { echo "$*" >&2; exit 1; }
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then die "port $PORT is in use (set PORT)"; fi

field() { # JSON file, role index, field
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["roles"][int(sys.argv[2])]; v=r["latency_ms"]["p99"] if sys.argv[3]=="p99" else r[sys.argv[3]]; print(f"{v:.1f}")' "$@"
}

run() { # label, broker binary
  local label=$1 bin=$2 dir
  dir=$(mktemp -d /tmp/sluice-ab.XXXXXX)
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
  "$after" bench produce -b "127.0.0.1:$PORT" -t ab -p 8 -s 1024 -a 1 -d "$DURATION" -q --json \
    >"$dir/produce.json"
  "$after" bench consume -b "127.0.0.1:$PORT" -t ab --from earliest -d "$DURATION" -q --json \
    >"$dir/consume.json"
  kill -INT "$pid"
  wait "$pid" || true
  trap - EXIT
  printf '%s produce %s msg/s %s MB/s p99 %s ms | consume %s msg/s %s MB/s p99 %s ms\n' "$label" \
    "$(field "$dir/produce.json" 0 msg_per_s)" "$(field "$dir/produce.json" 0 mb_per_s)" \
    "$(field "$dir/produce.json" 0 p99)" "$(field "$dir/consume.json" 0 msg_per_s)" \
    "$(field "$dir/consume.json" 0 mb_per_s)" "$(field "$dir/consume.json" 0 p99)"
  rm -rf "$dir"
}

for round in $(seq "$rounds"); do
  run "before#$round" "$before"
  run "after#$round" "$after"
done
