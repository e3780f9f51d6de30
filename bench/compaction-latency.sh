#!/usr/bin/env bash
# bench/compaction-latency.sh — does the log cleaner hurt produce and fetch latency?
# (issue 5: "a mixed `sluice bench` run during compaction keeps p99 within 2× of the run
# without it").
#
# One broker, one session. Each round:
#   1. creates a compacted topic `compacted` (segment.bytes 32 MiB) whose
#      min.cleanable.dirty.ratio is 1, so the cleaner leaves it alone, and fills it with
#      FILL_MESSAGES keyed 1 KiB records over KEYS keys (`sluice bench produce -k`);
#   2. syncs and waits for writeback, then runs the *baseline*: `sluice bench mixed` on a
#      separate, non-compacted topic `mix` while the cleaner is idle;
#   3. sets min.cleanable.dirty.ratio=0.01 on `compacted` (live), waits LEAD seconds for the
#      cleaner (log.cleaner.backoff.ms=1000) to pick it up, and runs the same mixed workload
#      *during compaction*;
#   4. waits for the cleanings to finish, checks from the broker log that each shard's cleaning
#      ended after the run (so it overlapped the whole run), and deletes `compacted`.
# It prints one markdown table (one line per run and role) on stdout, with the broker's CPU
# and that of everything else on the host but the load generator ("other": on a shared
# machine, other users' load shows up there) in % of one CPU; raw JSON results, the broker
# log and the cleaner timeline are kept in $WORK.
#
#   bench/compaction-latency.sh                      # 2 rounds, 10 s runs at 50,000 msg/s
#   ROUNDS=3 DURATION=15 bench/compaction-latency.sh
#   BROKER_SET="log.cleaner.io.max.bytes.per.second=50000000" bench/compaction-latency.sh
#
# Environment:
#   SLUICE         the sluice binary (default: target/ci/sluice, built with --profile ci)
#   PORT           broker base port (default 31092; shard k listens on PORT+k)
#   CORES          broker shards (default: all online CPUs)
#   ROUNDS         baseline + compaction pairs (default 2)
#   DURATION       seconds per mixed run (default 10)
#   RATE           mixed producer rate, msg/s (default 50000; 1 KiB messages, acks=1)
#   KEYS           distinct keys in `compacted` (default 500000)
#   FILL_MESSAGES  records written to `compacted` per round (default 2000000, about 2 GB)
#   LEAD           seconds between enabling cleaning and starting the run (default 2)
#   BROKER_SET     extra broker configs, space-separated KEY=VALUE
#   PERF           if set, `perf record $PERF -p <broker>` runs alongside every mixed run
#                  (e.g. PERF="-e sched:sched_switch -g" to see where the shards block), into
#                  $WORK/<run>.perf
#   WORK           where raw results go (default: a new temp dir; the broker's data is
#                  removed at exit)
# Needs: python3. Disk: about FILL_MESSAGES KiB × 1.5 plus 300 MB.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLUICE=${SLUICE:-$REPO/target/ci/sluice}
PORT=${PORT:-31092}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10}
RATE=${RATE:-50000}
KEYS=${KEYS:-500000}
FILL_MESSAGES=${FILL_MESSAGES:-2000000}
LEAD=${LEAD:-2}
WORK=${WORK:-$(mktemp -d /tmp/sluice-compaction.XXXXXX)}
BOOT=127.0.0.1:$PORT

log() { printf '[compaction-latency] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -x "$SLUICE" ] || die "$SLUICE not found (cargo build --profile ci --bin sluice, or set SLUICE)"
command -v python3 >/dev/null || die "python3 is missing"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then die "port $PORT is in use (set PORT)"; fi
mkdir -p "$WORK"
log "raw results in $WORK"

# --- the broker ---------------------------------------------------------------------------
BROKER=
# shellcheck source=latency-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/latency-common.sh"
trap stop_broker EXIT

sets=(--set "listeners=PLAINTEXT://$BOOT" --set "log.dirs=$WORK/data" --set metrics.listener=
      --set log.cleaner.backoff.ms=1000 --set log.retention.check.interval.ms=5000)
for kv in ${BROKER_SET:-}; do sets+=(--set "$kv"); done
cores=()
[ -n "${CORES:-}" ] && cores=(--cores "$CORES")
log "starting the broker: ${sets[*]} ${cores[*]}"
RUST_LOG=info,sluice_engine::log_cleaner=debug "$SLUICE" start "${cores[@]}" "${sets[@]}" \
  >"$WORK/broker.log" 2>&1 &
BROKER=$!
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.2
done
sleep 1
kill -0 "$BROKER" 2>/dev/null || die "the broker did not start; see $WORK/broker.log"
SHARDS=$(grep -ac 'shard ready' "$WORK/broker.log" || true)

# The measured topic: one partition per shard, its size bounded by retention.
"$SLUICE" topic create -b "$BOOT" mix --partitions "$SHARDS" --config segment.bytes=67108864 \
  --config retention.bytes=268435456 --config file.delete.delay.ms=1000 >&2


# Runs the mixed workload; writes <label>.json and <label>.cpu (broker CPU and the CPU of
# everything else on the host, other than the load generator: other users of the machine
# show up there).
mixed() { # label
  local busy0 broker0 bench0 t0
  busy0=$(host_busy); broker0=$(proc_cpu "$BROKER"); bench0=$(children_cpu); t0=$(date +%s.%N)
  local perf=
  if [ -n "${PERF:-}" ]; then
    # shellcheck disable=SC2086 # PERF is a list of perf options
    perf record $PERF -p "$BROKER" -o "$WORK/$1.perf" -- sleep "$DURATION" 2>/dev/null &
    perf=$!
  fi
  "$SLUICE" bench mixed -b "$BOOT" -t mix -r "$RATE" -d "$DURATION" -s 1024 -a 1 -q --json \
    >"$WORK/$1.json"
  if [ -n "$perf" ]; then wait "$perf" || true; fi
  python3 -c "import sys
busy, broker, bench, secs, cpus = (float(x) for x in sys.argv[1:])
hz = $(getconf CLK_TCK)
print(f'{100 * broker / hz / secs:.0f} {100 * (busy - broker - bench) / hz / secs:.0f} {cpus:.0f}')" \
    "$(( $(host_busy) - busy0 ))" "$(( $(proc_cpu "$BROKER") - broker0 ))" \
    "$(( $(children_cpu) - bench0 ))" "$(python3 -c "print($(date +%s.%N) - $t0)")" "$(nproc)" \
    >"$WORK/$1.cpu"
}

# Seconds since the epoch of the broker log's timestamps (RFC 3339, UTC) of the last line
# matching a pattern, per shard: "shard=<k> <epoch>".
cleaner_times() { # pattern
  sed 's/\x1b\[[0-9;]*m//g' "$WORK/broker.log" | { grep -a "$1" || true; } | python3 -c '
import sys, re, datetime
last = {}
for line in sys.stdin:
    m = re.search(r"shard=(\d+)", line)
    t = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
    if m: last[m.group(1)] = t
for shard, t in sorted(last.items()): print(f"shard={shard} {t:.3f}")
'
}

for round in $(seq "$ROUNDS"); do
  log "round $round: filling 'compacted' with $FILL_MESSAGES records over $KEYS keys"
  "$SLUICE" topic create -b "$BOOT" compacted --partitions "$SHARDS" \
    --config cleanup.policy=compact --config segment.bytes=33554432 \
    --config min.cleanable.dirty.ratio=1 --config file.delete.delay.ms=1000 >&2
  "$SLUICE" bench produce -b "$BOOT" -t compacted -k "$KEYS" -s 1024 -a 1 -n "$FILL_MESSAGES" \
    -q >/dev/null
  sync -f "$WORK"
  sleep 3

  log "round $round: baseline (cleaner idle)"
  mixed "base-$round"

  log "round $round: enabling cleaning, run starts in ${LEAD}s"
  "$SLUICE" config -b "$BOOT" set --topic compacted min.cleanable.dirty.ratio=0.01 >&2
  enabled=$(date +%s.%N)
  sleep "$LEAD"
  start=$(date +%s.%N)
  mixed "compaction-$round"
  end=$(date +%s.%N)

  log "round $round: waiting for the cleanings to finish"
  for _ in $(seq 600); do
    done_shards=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/broker.log" | grep -a 'INFO.*cleaned compacted-' \
      | awk -v t="$(date -u -d "@$enabled" +%FT%T)" '$1 >= t' | wc -l || true)
    [ "$done_shards" -ge "$SHARDS" ] && break
    sleep 1
  done
  {
    echo "round $round: cleaning enabled $enabled, run $start .. $end"
    echo "first swap after enabling, per shard:"
    sed 's/\x1b\[[0-9;]*m//g' "$WORK/broker.log" | { grep -a 'DEBUG.*cleaned compacted-' || true; } \
      | awk -v t="$(date -u -d "@$enabled" +%FT%T)" '$1 >= t' | sort -k1,1 \
      | awk '{ m = $NF; if (!(m in seen)) { seen[m] = 1; print "  " $1, m } }'
    echo "cleaning finished, per shard:"
    cleaner_times 'INFO.*cleaned compacted-' | sed 's/^/  /'
  } >"$WORK/cleaner-$round.txt"
  cat "$WORK/cleaner-$round.txt" >&2
  cleaner_times 'INFO.*cleaned compacted-' | while read -r shard t; do
    if python3 -c "import sys; sys.exit(0 if $t >= $end else 1)"; then
      log "round $round: $shard cleaned past the end of the run (overlap: whole run)"
    else
      log "round $round: WARNING $shard finished cleaning $(python3 -c "print(round($end - $t, 1))") s before the run ended"
    fi
  done

  "$SLUICE" topic delete -b "$BOOT" compacted >&2
  for _ in $(seq 120); do
    compgen -G "$WORK/data/compacted-*" >/dev/null || break
    sleep 1
  done
  sync -f "$WORK"
  sleep 3
done

python3 - "$WORK" "$ROUNDS" <<'EOF'
import json, sys
work, rounds = sys.argv[1], int(sys.argv[2])
print("| run | role | msg/s | MB/s | p50 ms | p99 ms | p99.9 ms | max ms | broker CPU % | other CPU % |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in range(1, rounds + 1):
    for label in ("base", "compaction"):
        d = json.load(open(f"{work}/{label}-{r}.json"))
        broker_cpu, other_cpu, _ = open(f"{work}/{label}-{r}.cpu").read().split()
        for role in d["roles"]:
            l = role["latency_ms"]
            name = "baseline" if label == "base" else "during compaction"
            print(f"| {name} {r} | {role['role']} | {role['msg_per_s']:,.0f} | {role['mb_per_s']:.1f} "
                  f"| {l['p50']:.3f} | {l['p99']:.3f} | {l['p99.9']:.3f} | {l['max']:.3f} "
                  f"| {broker_cpu} | {other_cpu} |")
EOF
