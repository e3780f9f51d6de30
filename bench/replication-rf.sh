#!/usr/bin/env bash
# acks=all produce to a replication-factor-3 topic against a replication-factor-1 topic on one
# three-broker cluster (README "Run a cluster": config/cluster/broker-N.properties, two shards
# each, every broker a voter), alternating (rf1, rf3, rf1, rf3, …): used for issue 12
# (bench/RESULTS.md, "Issue 12 (replicated partitions)").
#
# Usage: bench/replication-rf.sh BIN [ROUNDS]
# Environment: PORT_BASE (default 23000: broker N listens on BASE+N*100+92 and +93, its
# controller on BASE+N*100+99), DURATION (default 10), RATE (messages per second of every
# producer, default 0: as fast as it can), RDKAFKA_PERFORMANCE (path of librdkafka's
# examples/rdkafka_performance; when set, each round also runs it for DURATION seconds against
# each topic with acks=-1, 1 KiB messages, linger.ms=5, batch.size=16384, and per-message
# latencies written with -A).
# Topics rf1 and rf3 get 8 partitions each. The producer is BIN's `sluice bench produce`, 1 KiB
# messages, acks=all, all three brokers as bootstrap. Prints one line per run: label, msg/s,
# MB/s, p50/p99/p99.9 ms, errors. The data directories are removed at the end (an unlimited run
# writes gigabytes); logs and outputs stay in a directory under /tmp, named at the end.
set -euo pipefail
bin=$1 rounds=${2:-2}
BASE=${PORT_BASE:-23000}
DURATION=${DURATION:-10}
RATE=${RATE:-0}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
work=$(mktemp -d /tmp/sluice-replication-rf.XXXXXX)

client_port() { echo $((BASE + $1 * 100 + 92)); }
controller_port() { echo $((BASE + $1 * 100 + 99)); }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
voters="1@127.0.0.1:$(controller_port 1),2@127.0.0.1:$(controller_port 2),3@127.0.0.1:$(controller_port 3)"
bootstrap="127.0.0.1:$(client_port 1),127.0.0.1:$(client_port 2),127.0.0.1:$(client_port 3)"

for n in 1 2 3; do
  for port in $(client_port "$n") $(($(client_port "$n") + 1)) $(controller_port "$n"); do
    if port_open "$port"; then echo "127.0.0.1:$port is in use (set PORT_BASE)" >&2; exit 1; fi
  done
done

pids=()
stop_brokers() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; }
trap stop_brokers EXIT
for n in 1 2 3; do
  "$bin" start --config "$repo/config/cluster/broker-$n.properties" --cores 2 \
    --set "listeners=PLAINTEXT://127.0.0.1:$(client_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")" \
    --set "controller.quorum.voters=$voters" --set metrics.listener= \
    --set "log.dirs=$work/data-$n" >"$work/broker-$n.log" 2>&1 &
  pids+=($!)
done

up=0
for _ in $(seq 900); do
  status=$("$bin" cluster status --json -b "$bootstrap" --timeout-ms 2000 2>/dev/null) || status=
  if [ -n "$status" ] && [ "$(grep -o '"fenced":false' <<<"$status" | wc -l)" -eq 3 ]; then
    up=1; break
  fi
  sleep 0.1
done
if [ $up = 0 ]; then echo "the cluster did not come up within 90 s (logs in $work)" >&2; exit 1; fi

for rf in 1 3; do
  "$bin" topic create -b "$bootstrap" --partitions 8 --replication-factor "$rf" "rf$rf"
done
sleep 2 # let the followers' fetchers start and every ISR fill
"$bin" topic describe -b "$bootstrap" rf3 >"$work/rf3-describe.txt" 2>&1 || true

rdkafka_run() { # label, topic
  local lat="$work/$1.lat" rate=()
  if [ "$RATE" != 0 ]; then rate=(-r "$RATE"); fi
  timeout -s INT "$((DURATION + 1))" "$RDKAFKA_PERFORMANCE" -P -t "$2" -b "$bootstrap" -s 1024 \
    "${rate[@]}" -a -1 -l -A "$lat" -q -X linger.ms=5 -X batch.size=16384 >"$work/$1.out" 2>&1 || true
  python3 - "$1" "$lat" "$work/$1.out" <<'PY'
import re, sys
label, lat_path, out_path = sys.argv[1:]
lat = sorted(int(l) for l in open(lat_path) if l.strip())
out = open(out_path).read()
m = re.findall(r"(\d+) delivered .*?in (\d+)ms: (\d+) msgs/s and ([\d.]+) MB/s", out)
pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000.0 if lat else float("nan")
rate = f"{m[-1][2]} msg/s {m[-1][3]} MB/s" if m else "? msg/s"
print(f"{label} {rate} p50 {pct(0.5):.1f} p99 {pct(0.99):.1f} p99.9 {pct(0.999):.1f} ms "
      f"samples {len(lat)}")
PY
}

for round in $(seq "$rounds"); do
  for rf in 1 3; do
    "$bin" bench produce -b "$bootstrap" -t "rf$rf" -s 1024 -a all -r "$RATE" -d "$DURATION" -q \
      --json \
      >"$work/rf$rf-$round.json"
    python3 "$here/summary-line.py" "sluice-bench-rf$rf#$round" "$work/rf$rf-$round.json"
  done
  if [ -n "${RDKAFKA_PERFORMANCE:-}" ]; then
    for rf in 1 3; do rdkafka_run "rdkafka-rf$rf#$round" "rf$rf"; done
  fi
done
"$bin" topic describe -b "$bootstrap" rf3 >"$work/rf3-describe-after.txt" 2>&1 || true

stop_brokers
for pid in "${pids[@]}"; do wait "$pid" || echo "a broker exited with $?" >&2; done
pids=()
rm -rf "$work"/data-* # the data is gigabytes: remove it, keep the logs and outputs
echo "logs and outputs: $work"
