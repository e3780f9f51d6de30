# bench/latency-common.sh — helpers shared by the latency scripts (compaction-latency.sh,
# topic-delete-latency.sh); sourced, not run. The sourcing script sets WORK (its scratch
# directory) and BROKER (the pid of the broker it started, or empty).

# Stops the broker (if any) and removes its data under $WORK/data.
stop_broker() {
  if [ -n "$BROKER" ]; then
    kill "$BROKER" 2>/dev/null || true
    wait "$BROKER" 2>/dev/null || true
    BROKER=
  fi
  rm -rf "$WORK/data"
}

# CPU time in clock ticks: of the whole host (busy), and of one process.
host_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
proc_cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# CPU time of this shell's finished children, in clock ticks (from `times`).
children_cpu() {
  times | tail -1 | awk -v hz="$(getconf CLK_TCK)" '{
    split($1, u, "m"); split($2, s, "m"); sub("s", "", u[2]); sub("s", "", s[2])
    print int(((u[1] * 60 + u[2]) + (s[1] * 60 + s[2])) * hz) }'
}
