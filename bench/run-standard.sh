#!/usr/bin/env bash
# bench/run-standard.sh — Sluice's standard benchmark: workloads W1–W7, each driven by
# `sluice bench` and by librdkafka's rdkafka_performance (the reference client) against the
# same broker, next to this machine's limits measured in the same invocation (iperf3 loopback,
# fio sequential writes). Prints one markdown table of medians (RUNS runs each) on stdout and
# keeps every raw result in $WORK.
#
#   bench/run-standard.sh                 # everything, 30 s per run, 3 runs
#   DURATION=10 RUNS=1 bench/run-standard.sh W1 W4   # a quick look at two workloads
#
# Environment:
#   DURATION  seconds per produce run (default 30)        RUNS   runs per figure (default 3)
#   PORT      broker base port (default 29092)            CORES  broker shards (default: all)
#   WARM=0    skip warming RAM first (on VMs whose memory is backed lazily, the first touch of a
#             page costs ~10x; warming once keeps the page cache from measuring the hypervisor)
#   RDKPERF   path of rdkafka_performance (default: built by ../shared/tools/librdkafka-suite.sh)
#   WORK      where raw results go (default: a new temp dir)
# Needs: fio, iperf3, python3; builds target/release/sluice.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-30}
RUNS=${RUNS:-3}
PORT=${PORT:-29092}
WORK=${WORK:-$(mktemp -d /tmp/sluice-bench.XXXXXX)}
L=${LIBRDKAFKA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/librdkafka-suite/librdkafka}
RDKPERF=${RDKPERF:-$L/examples/rdkafka_performance}
SLUICE=$REPO/target/release/sluice
WORKLOADS=("$@")
[ ${#WORKLOADS[@]} -gt 0 ] || WORKLOADS=(W1 W2 W3 W4 W5 W6 W7)

log() { printf '[run-standard] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
want() { local w; for w in "${WORKLOADS[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

for tool in fio iperf3 python3; do
  command -v "$tool" >/dev/null || die "$tool is missing (Debian: apt-get install fio iperf3 python3)"
done
log "building sluice (release)"
(cd "$REPO" && cargo build --release --bin sluice >&2) || die "cargo build failed"
if [ ! -x "$RDKPERF" ]; then
  log "building rdkafka_performance from the librdkafka source that rdkafka-sys ships"
  bash "$REPO/../shared/tools/librdkafka-suite.sh" mock 0004 >/dev/null 2>&1 || true
  [ -x "$RDKPERF" ] || die "rdkafka_performance not found at $RDKPERF (set RDKPERF)"
fi
export LD_LIBRARY_PATH="$L/src${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
log "raw results in $WORK"

if [ "${WARM:-1}" = 1 ]; then
  mb=$(awk '/MemAvailable/ {print int($2 / 1024 * 0.75)}' /proc/meminfo)
  log "warming ${mb} MiB of RAM once (WARM=0 skips)"
  dd if=/dev/zero of="$WORK/warm" bs=1M count="$mb" status=none && rm -f "$WORK/warm"
fi

# --- machine limits -----------------------------------------------------------------------
iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
sleep 0.5
IPERF=$(iperf3 -c 127.0.0.1 -p 5299 -t 5 -J | python3 -c \
  'import json,sys; d=json.load(sys.stdin); print(round(d["end"]["sum_received"]["bits_per_second"]/8e6, 1))')
FIO_DIRECT=$(fio --name=direct --filename="$WORK/fio" --rw=write --bs=1M --size=2G --direct=1 \
  --ioengine=libaio --iodepth=8 --output-format=json | python3 -c \
  'import json,sys; print(round(json.load(sys.stdin)["jobs"][0]["write"]["bw_bytes"]/1e6, 1))')
rm -f "$WORK/fio"
FIO_SYNC=$(fio --name=fsync --filename="$WORK/fio" --rw=write --bs=1M --size=2G --fdatasync=1 \
  --ioengine=psync --output-format=json | python3 -c \
  'import json,sys; print(round(json.load(sys.stdin)["jobs"][0]["write"]["bw_bytes"]/1e6, 1))')
rm -f "$WORK/fio"
log "iperf3 loopback $IPERF MB/s; fio 1 MiB O_DIRECT $FIO_DIRECT MB/s; buffered+fdatasync $FIO_SYNC MB/s"

# --- broker lifecycle -----------------------------------------------------------------------
BROKER=
start_broker() { # extra --set options…
  stop_broker
  rm -rf "$WORK/data"
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then die "port $PORT is already in use (set PORT)"; fi
  local cores=()
  [ -n "${CORES_OVERRIDE:-${CORES:-}}" ] && cores=(--cores "${CORES_OVERRIDE:-$CORES}")
  "$SLUICE" start "${cores[@]}" --set "listeners=PLAINTEXT://127.0.0.1:$PORT" --set "log.dirs=$WORK/data" \
    --set metrics.listener= --set num.partitions=8 "$@" >"$WORK/broker.log" 2>&1 &
  BROKER=$!
  for _ in $(seq 100); do
    kill -0 "$BROKER" 2>/dev/null || die "broker exited at start; see $WORK/broker.log"
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  die "broker did not start; see $WORK/broker.log"
}
stop_broker() {
  if [ -n "$BROKER" ]; then kill -TERM "$BROKER" 2>/dev/null; wait "$BROKER" 2>/dev/null || true; BROKER=; fi
}
trap stop_broker EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$BROKER/stat"; }
BS=127.0.0.1:$PORT
TICK=$(getconf CLK_TCK)

# One measured run: $1 = result file; the rest is the command. Records the broker's CPU seconds.
measure() {
  local out=$1; shift
  local before; before=$(cpu_ticks)
  local rc=0
  "$@" >"$out" 2>"$out.err" || rc=$?
  # 124: `timeout -s INT` ended a duration-bounded rdkafka_performance run, as intended.
  [ $rc = 0 ] || [ $rc = 124 ] || log "command failed with exit $rc (see $out.err): $*"
  echo "$(( $(cpu_ticks) - before )) $TICK" >"$out.cpu"
}

SB=("$SLUICE" bench)
RP=("$RDKPERF")
for w in W1 W2 W3 W4 W5 W6 W7; do want "$w" || continue
  for run in $(seq "$RUNS"); do
    d="$WORK/$w/$run"; mkdir -p "$d"
    log "$w run $run/$RUNS"
    case $w in
      W1|W3|W2)
        size=1024; [ $w = W3 ] && size=100
        acks=1; extra=(); batching=()
        # W2: an fdatasync per group commit makes the bytes in flight the limit, so the
        # generator batches like librdkafka does (larger batches, more requests in flight).
        [ $w = W2 ] && { acks=all; extra=(--set sluice.fsync.acks.all=true); batching=(--batch-bytes 131072 --max-in-flight 10); }
        rpacks=$acks; [ "$acks" = all ] && rpacks=-1
        start_broker "${extra[@]}"
        measure "$d/sluice.json" "${SB[@]}" produce -b "$BS" -t "$w" -p 8 -s $size -a $acks -d "$DURATION" \
          "${batching[@]}" --json -q
        start_broker "${extra[@]}"
        measure "$d/rdkperf.txt" timeout -s INT "$DURATION" "${RP[@]}" -P -t "$w" -s $size -a $rpacks \
          -b "$BS" -X linger.ms=5 -c 1000000000 ;;
      W4)
        start_broker
        "${SB[@]}" produce -b "$BS" -t w4 -p 8 -s 1024 -a 1 -d "$DURATION" --json -q >"$d/fill.json"
        count=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["roles"][0]["messages"])' "$d/fill.json")
        measure "$d/sluice.json" "${SB[@]}" consume -b "$BS" -t w4 --from earliest -n "$count" --json -q
        measure "$d/rdkperf.txt" timeout -s INT $((DURATION * 3)) "${RP[@]}" -C -t w4 -o beginning -b "$BS" \
          -p 0 -p 1 -p 2 -p 3 -p 4 -p 5 -p 6 -p 7 -c "$count" ;;
      W5)
        rate=$(python3 "$REPO/bench/standard_table.py" half-rate "$WORK" W1)
        start_broker
        measure "$d/sluice.json" "${SB[@]}" e2e -b "$BS" -t w5 -p 8 -s 1024 -a 1 -r "$rate" -d "$DURATION" --json -q ;;
      W6)
        start_broker
        measure "$d/sluice.json" "${SB[@]}" mixed -b "$BS" -t w6 -p 8 -s 1024 -a 1 -d "$DURATION" --json -q ;;
      W7)
        CORES_OVERRIDE=1 start_broker
        measure "$d/sluice-1core.json" "${SB[@]}" produce -b "$BS" -t w7 -p 8 -s 1024 -a 1 -d "$DURATION" --json -q
        start_broker
        measure "$d/sluice.json" "${SB[@]}" produce -b "$BS" -t w7 -p 8 -s 1024 -a 1 -d "$DURATION" --json -q ;;
    esac
  done
done
stop_broker

python3 "$REPO/bench/standard_table.py" table "$WORK" "$IPERF" "$FIO_DIRECT" "$FIO_SYNC" "${WORKLOADS[@]}"
