#!/usr/bin/env bash
# bench/topic-delete-latency.sh — does deleting a large topic hurt produce and fetch latency?
#
# For each round and each binary given (in turn, so that binaries alternate), a fresh broker:
#   1. creates topic `big` (2 partitions, segment.bytes 32 MiB) and fills it with
#      FILL_MESSAGES 1 KiB records (`sluice bench produce`, about 2 GB by default);
#   2. syncs and waits for writeback, creates `mix` and runs the *baseline*:
#      `sluice bench mixed` on `mix`;
#   3. runs the same again and, DELETE_AT seconds into it, `sluice topic delete big`
#      (*during deletion*); it notes how long after the delete the partitions' directories
#      were gone;
#   4. stops the broker and removes its data.
# It prints one markdown table on stdout (produce and consume rows per run), with the broker's
# CPU and that of everything else on the host but the load generator ("other": other users'
# load on a shared machine) in % of one CPU. Raw JSON, CPU figures and broker logs stay in $WORK.
#
#   bench/topic-delete-latency.sh                                  # target/ci/sluice, 2 rounds
#   ROUNDS=2 bench/topic-delete-latency.sh before=/tmp/sluice-before after=/tmp/sluice-after
#   PERF="-e sched:sched_switch -g" bench/topic-delete-latency.sh after=/tmp/sluice-after
#
# Arguments: LABEL=BINARY ... (default: ci=target/ci/sluice)
# Environment:
#   PORT           broker base port (default 31092; shard k listens on PORT+k)
#   ROUNDS         rounds (default 2); each runs every binary once
#   DURATION       seconds per mixed run (default 10)
#   RATE           mixed producer rate, msg/s (default 50000; 1 KiB messages, acks=1)
#   FILL_MESSAGES  1 KiB records written to `big` (default 2000000, about 2 GB)
#   DELETE_AT      seconds into the second run at which `big` is deleted (default 3)
#   PERF           if set, `perf record $PERF -p <broker>` runs alongside the deletion run,
#                  into $WORK/<label>-<round>.perf
#   WORK           where raw results go (default: a new temp dir; broker data is removed)
# Needs: python3. Disk: about FILL_MESSAGES KiB + 1.2 GB (one data set at a time).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${PORT:-31092}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10}
RATE=${RATE:-50000}
FILL_MESSAGES=${FILL_MESSAGES:-2000000}
DELETE_AT=${DELETE_AT:-3}
WORK=${WORK:-$(mktemp -d /tmp/sluice-topic-delete.XXXXXX)}
BOOT=127.0.0.1:$PORT
[ $# -gt 0 ] || set -- "ci=$REPO/target/ci/sluice"

log() { printf '[topic-delete-latency] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for arg in "$@"; do [ -x "${arg#*=}" ] || die "${arg#*=} is not an executable"; done
command -v python3 >/dev/null || die "python3 is missing"
mkdir -p "$WORK"
log "raw results in $WORK"

BROKER=
# shellcheck source=latency-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/latency-common.sh"
trap stop_broker EXIT


# Runs the mixed workload into <name>.json and <name>.cpu ("broker% other%").
mixed() { # binary name [perf]
  local busy0 broker0 bench0 t0 perf=
  busy0=$(host_busy); broker0=$(proc_cpu "$BROKER"); bench0=$(children_cpu); t0=$(date +%s.%N)
  if [ -n "${3:-}" ] && [ -n "${PERF:-}" ]; then
    # shellcheck disable=SC2086 # PERF is a list of perf options
    perf record $PERF -p "$BROKER" -o "$WORK/$2.perf" -- sleep "$DURATION" 2>/dev/null &
    perf=$!
  fi
  "$1" bench mixed -b "$BOOT" -t mix -r "$RATE" -d "$DURATION" -s 1024 -a 1 -q --json \
    >"$WORK/$2.json"
  if [ -n "$perf" ]; then wait "$perf" || true; fi
  python3 -c "import sys
busy, broker, bench, secs = (float(x) for x in sys.argv[1:]); hz = $(getconf CLK_TCK)
print(f'{100 * broker / hz / secs:.0f} {100 * (busy - broker - bench) / hz / secs:.0f}')" \
    "$(( $(host_busy) - busy0 ))" "$(( $(proc_cpu "$BROKER") - broker0 ))" \
    "$(( $(children_cpu) - bench0 ))" "$(python3 -c "print($(date +%s.%N) - $t0)")" \
    >"$WORK/$2.cpu"
}

names=()
for round in $(seq "$ROUNDS"); do
  for arg in "$@"; do
    label=${arg%%=*} bin=${arg#*=} name="$label-$round"
    names+=("$name")
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then die "port $PORT is in use"; fi
    log "$name: starting $bin"
    RUST_LOG=info "$bin" start --set "listeners=PLAINTEXT://$BOOT" --set "log.dirs=$WORK/data" \
      --set metrics.listener= >"$WORK/$name.broker.log" 2>&1 &
    BROKER=$!
    for _ in $(seq 50); do
      (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
      sleep 0.2
    done
    sleep 1
    kill -0 "$BROKER" 2>/dev/null || die "the broker did not start; see $WORK/$name.broker.log"
    shards=$(grep -ac 'shard ready' "$WORK/$name.broker.log" || true)

    log "$name: filling 'big' with $FILL_MESSAGES records"
    "$bin" topic create -b "$BOOT" big --partitions 2 --config segment.bytes=33554432 >&2
    "$bin" bench produce -b "$BOOT" -t big -s 1024 -a 1 -n "$FILL_MESSAGES" -q >/dev/null
    du -sh "$WORK/data" >&2
    sync -f "$WORK"
    sleep 3
    # `mix` never reaches its retention here, so no segment is deleted but big's.
    "$bin" topic create -b "$BOOT" mix --partitions "$shards" --config segment.bytes=67108864 \
      --config retention.bytes=1073741824 >&2

    log "$name: baseline"
    mixed "$bin" "$name-base"

    log "$name: deleting 'big' ${DELETE_AT}s into the run"
    (
      sleep "$DELETE_AT"
      t0=$(date +%s.%N)
      "$bin" topic delete -b "$BOOT" big >&2
      t1=$(date +%s.%N)
      while compgen -G "$WORK/data/big-*" >/dev/null; do sleep 0.1; done
      python3 -c "print(f'delete request {$t1 - $t0:.2f} s, directories gone after {$(date +%s.%N) - $t0:.1f} s')"
    ) >"$WORK/$name-delete.txt" &
    deleter=$!
    mixed "$bin" "$name-delete" perf
    wait "$deleter"
    cat "$WORK/$name-delete.txt" >&2
    stop_broker
    sync -f "$WORK"
    sleep 3
  done
done

python3 - "$WORK" "${names[@]}" <<'EOF'
import json, sys
work, names = sys.argv[1], sys.argv[2:]
print("| binary | run | role | msg/s | p50 ms | p99 ms | p99.9 ms | max ms | broker CPU % | other CPU % |")
print("|---|---|---|---|---|---|---|---|---|---|")
for name in names:
    label, r = name.rsplit("-", 1)
    for kind, title in (("base", "baseline"), ("delete", "during deletion")):
        d = json.load(open(f"{work}/{name}-{kind}.json"))
        broker_cpu, other_cpu = open(f"{work}/{name}-{kind}.cpu").read().split()
        for role in d["roles"]:
            l = role["latency_ms"]
            print(f"| {label} | {title} {r} | {role['role']} | {role['msg_per_s']:,.0f} "
                  f"| {l['p50']:.3f} | {l['p99']:.3f} | {l['p99.9']:.3f} | {l['max']:.3f} "
                  f"| {broker_cpu} | {other_cpu} |")
EOF
