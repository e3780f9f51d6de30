#!/usr/bin/env bash
# bench/idle-connections.sh — do idle and slowloris connections hurt a normal producer?
# (issue 10: "10,000 idle connections plus 50 slowloris connections do not change a normal
# producer's p99 by more than 2×. Broker memory stays within a documented bound").
#
# One broker. Each round runs `sluice bench produce` at a fixed rate twice:
#   1. *alone*;
#   2. *loaded*: with IDLE connections that never send a byte and SLOW connections that each
#      announce a 100 MiB request and trickle it, one byte per connection every 100 ms (a small
#      python3 client, spread over the shards' ports), opened before the run and kept open
#      during it.
# It prints one markdown table on stdout: p50/p99/p99.9/max produce latency per run, and the
# broker's resident memory (VmRSS) after each run and its peak (VmHWM). Raw JSON results and
# the broker log are kept in $WORK.
#
#   bench/idle-connections.sh                      # 2 rounds, 10 s runs at 20,000 msg/s
#   ROUNDS=3 IDLE=10000 SLOW=50 bench/idle-connections.sh
#
# Environment:
#   SLUICE     the sluice binary (default: target/ci/sluice, built with --profile ci)
#   PORT       broker base port (default 32092; shard k listens on PORT+k)
#   CORES      broker shards (default: all online CPUs)
#   ROUNDS     alone + loaded pairs (default 2)
#   DURATION   seconds per produce run (default 10)
#   RATE       producer rate, msg/s (default 20000; 1 KiB messages, acks=1)
#   IDLE       idle connections (default 10000)
#   SLOW       slowloris connections (default 50)
#   BROKER_SET extra broker configs, space-separated KEY=VALUE
#   WORK       where raw results go (default: a new temp dir; broker data removed at exit)
# Needs: python3, and a hard RLIMIT_NOFILE above IDLE + SLOW + 1000 (the script raises the soft
# limit to it for itself, the broker and the connection holder).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLUICE=${SLUICE:-$REPO/target/ci/sluice}
PORT=${PORT:-32092}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10}
RATE=${RATE:-20000}
IDLE=${IDLE:-10000}
SLOW=${SLOW:-50}
WORK=${WORK:-$(mktemp -d /tmp/sluice-idle.XXXXXX)}
BOOT=127.0.0.1:$PORT

log() { printf '[idle-connections] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -x "$SLUICE" ] || die "$SLUICE not found (cargo build --profile ci --bin sluice, or set SLUICE)"
command -v python3 >/dev/null || die "python3 is missing"
need=$((IDLE + SLOW + 1000))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
  die "hard RLIMIT_NOFILE is $hard, need $need (raise it, or lower IDLE)"
fi
ulimit -Sn "$hard"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then die "port $PORT is in use (set PORT)"; fi
mkdir -p "$WORK"
log "raw results in $WORK; RLIMIT_NOFILE $(ulimit -Sn)"

BROKER=
HOLDER=
# shellcheck source=latency-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/latency-common.sh"
stop_all() {
  if [ -n "$HOLDER" ]; then kill "$HOLDER" 2>/dev/null || true; wait "$HOLDER" 2>/dev/null || true; fi
  stop_broker
}
trap stop_all EXIT

sets=(--set "listeners=PLAINTEXT://$BOOT" --set "log.dirs=$WORK/data" --set metrics.listener=)
for kv in ${BROKER_SET:-}; do sets+=(--set "$kv"); done
cores=()
[ -n "${CORES:-}" ] && cores=(--cores "$CORES")
log "starting the broker: ${sets[*]} ${cores[*]}"
"$SLUICE" start "${cores[@]}" "${sets[@]}" >"$WORK/broker.log" 2>&1 &
BROKER=$!
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.2
done
sleep 1
kill -0 "$BROKER" 2>/dev/null || die "the broker did not start; see $WORK/broker.log"
SHARDS=$(grep -ac 'shard ready' "$WORK/broker.log" || true)
"$SLUICE" topic create -b "$BOOT" lat --partitions "$SHARDS" --config retention.bytes=268435456 >&2

mem() { # field of /proc/<broker>/status in MiB
  awk -v f="$1:" '$1 == f { printf "%.0f", $2 / 1024 }' "/proc/$BROKER/status"
}

# Opens IDLE idle and SLOW slowloris connections over the shards' ports, prints "ready" on
# stdout once all are open, then trickles the slowloris bytes until killed.
holder() {
  exec python3 - "$PORT" "$SHARDS" "$IDLE" "$SLOW" <<'EOF'
import resource, socket, struct, sys, time
port, shards, idle, slow = (int(x) for x in sys.argv[1:])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
def connect(i):
    s = socket.create_connection(("127.0.0.1", port + i % shards))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
idlers = [connect(i) for i in range(idle)]
slowloris = [connect(i) for i in range(slow)]
# A Produce v9 announcing 100 MiB: size prefix, api key, version, correlation id, no client id.
frame = struct.pack(">ihhih", 100 << 20, 0, 9, 1, -1)
print("ready", flush=True)
sent = 0
while True:
    byte = frame[sent:sent + 1] or b"\x5a"
    for s in slowloris:
        s.send(byte)
    sent += 1
    time.sleep(0.1)
EOF
}

produce() { # label
  "$SLUICE" bench produce -b "$BOOT" -t lat -r "$RATE" -d "$DURATION" -s 1024 -a 1 -q --json \
    >"$WORK/$1.json"
  printf '%s %s\n' "$(mem VmRSS)" "$(mem VmHWM)" >"$WORK/$1.mem"
}

for round in $(seq "$ROUNDS"); do
  log "round $round: alone"
  produce "alone-$round"
  log "round $round: opening $IDLE idle and $SLOW slowloris connections"
  coproc HOLD { holder; }
  HOLDER=$HOLD_PID
  read -r ready <&"${HOLD[0]}" || die "the connection holder failed"
  [ "$ready" = ready ] || die "the connection holder said: $ready"
  sleep 2
  printf '%s\n' "$(mem VmRSS)" >"$WORK/loaded-$round.rss-open"
  log "round $round: loaded"
  produce "loaded-$round"
  kill "$HOLDER" 2>/dev/null || true
  wait "$HOLDER" 2>/dev/null || true
  HOLDER=
  sleep 2
done

python3 - "$WORK" "$ROUNDS" "$IDLE" "$SLOW" <<'EOF'
import json, sys
work, rounds, idle, slow = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
print("| run | connections held | msg/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | broker RSS MiB | broker peak MiB |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in range(1, rounds + 1):
    for label in ("alone", "loaded"):
        role = json.load(open(f"{work}/{label}-{r}.json"))["roles"][0]
        l = role["latency_ms"]
        errors = sum(e["count"] for e in role["errors"])
        rss, hwm = open(f"{work}/{label}-{r}.mem").read().split()
        held = f"{idle} idle + {slow} slowloris" if label == "loaded" else "none"
        print(f"| {label} {r} | {held} | {role['msg_per_s']:.0f} | {l['p50']:.2f} | {l['p99']:.2f} | "
              f"{l['p99.9']:.2f} | {l['max']:.2f} | {errors} | {rss} | {hwm} |")
EOF
