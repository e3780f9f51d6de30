#!/usr/bin/env python3
"""Summarises bench/run-standard.sh's raw results as a markdown table of medians.

  standard_table.py table WORK IPERF_MBPS FIO_DIRECT_MBPS FIO_SYNC_MBPS W1 W2 ...
  standard_table.py half-rate WORK W1      # half of W1's median msg/s (W5's rate)
"""
import glob
import json
import os
import re
import statistics
import sys

# Producer: "... in 1000ms: 498158 msgs/s and 510.11 MB/s"; consumer: "... consumed in
# 10258ms: 1186022 msgs/s (1214.49 MB/s)".
RDK_LINE = re.compile(r"(\d+) messages? .*?in (\d+)ms: (\d+) msgs/s(?: and |\s*\()([\d.]+) MB/s")


def sluice_runs(work, workload, name="sluice.json", role=None):
    """Each run's role summary (the first role, or the named one) from sluice bench JSON."""
    out = []
    for path in sorted(glob.glob(os.path.join(work, workload, "*", name))):
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            continue
        roles = doc.get("roles", [])
        chosen = [r for r in roles if role is None or r.get("role") == role]
        if chosen:
            entry = dict(chosen[0])
            entry["cpu_s"] = cpu_seconds(path)
            out.append(entry)
    return out


def rdk_runs(work, workload):
    """(msg/s, MB/s, cpu seconds, bytes) of each rdkafka_performance run: its last summary line."""
    out = []
    for path in sorted(glob.glob(os.path.join(work, workload, "*", "rdkperf.txt"))):
        text = open(path, errors="replace").read()
        lines = RDK_LINE.findall(text)
        if lines:
            msgs, ms, rate, mbps = lines[-1]
            out.append((float(rate), float(mbps), cpu_seconds(path), float(mbps) * float(ms) / 1000.0))
    return out


def cpu_seconds(result_path):
    try:
        ticks, hz = open(result_path + ".cpu").read().split()
        return int(ticks) / int(hz)
    except (OSError, ValueError):
        return None


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1):
    return "–" if v is None else f"{v:,.{digits}f}"


def cpu_per_gb(runs):
    per = [r["cpu_s"] / (r["bytes"] / 1e9) for r in runs if r.get("cpu_s") is not None and r.get("bytes")]
    return med(per)


def table(work, iperf, fio_direct, fio_sync, workloads):
    iperf, fio_direct, fio_sync = float(iperf), float(fio_direct), float(fio_sync)
    print(f"Machine limits (same invocation): iperf3 loopback {iperf:,.0f} MB/s; fio 1 MiB sequential write "
          f"O_DIRECT {fio_direct:,.0f} MB/s, buffered + fdatasync {fio_sync:,.0f} MB/s.\n")
    print("| workload | sluice bench msg/s | MB/s | p50 ms | p99 ms | p99.9 ms | max ms | broker CPU s/GB "
          "| rdkafka_performance msg/s | MB/s | target | met |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    w1_mb = med([r["mb_per_s"] for r in sluice_runs(work, "W1")])
    for w in workloads:
        roles = [None]
        if w == "W6":
            roles = ["produce", "consume"]
        for role in roles:
            runs = sluice_runs(work, w, role=role)
            ref = rdk_runs(work, w)
            label = w + (f" {role}" if role else "")
            mb = med([r["mb_per_s"] for r in runs])
            lat = lambda k: med([r.get("latency_ms", {}).get(k) for r in runs])
            ref_mb = med([r[1] for r in ref])
            target, met = targets(w, mb, lat("p99"), iperf, fio_sync, w1_mb, ref_mb)
            print(f"| {label} | {fmt(med([r['msg_per_s'] for r in runs]), 0)} | {fmt(mb)} | {fmt(lat('p50'), 3)} "
                  f"| {fmt(lat('p99'), 3)} | {fmt(lat('p99.9'), 3)} | {fmt(lat('max'), 3)} | {fmt(cpu_per_gb(runs), 2)} "
                  f"| {fmt(med([r[0] for r in ref]), 0)} | {fmt(ref_mb)} | {target} | {met} |")
        if w == "W7":
            one = sluice_runs(work, "W7", name="sluice-1core.json")
            print(f"| W7 1 shard | {fmt(med([r['msg_per_s'] for r in one]), 0)} | {fmt(med([r['mb_per_s'] for r in one]))} "
                  f"| {fmt(med([r['latency_ms']['p50'] for r in one]), 3)} | {fmt(med([r['latency_ms']['p99'] for r in one]), 3)} "
                  f"| {fmt(med([r['latency_ms']['p99.9'] for r in one]), 3)} | {fmt(med([r['latency_ms']['max'] for r in one]), 3)} "
                  f"| {fmt(cpu_per_gb(one), 2)} | – | – | scaling | – |")


def targets(w, mb, p99, iperf, fio_sync, w1_mb, ref_mb):
    """The issue's point-5 targets: description and whether the median meets it."""
    def yes(ok):
        return "–" if ok is None else ("yes" if ok else "**no**")
    if w == "W1":
        parts = [f">= 50% iperf3 ({iperf / 2:,.0f})", ">= rdkafka_performance"]
        ok = None if mb is None else (mb >= iperf / 2) and (ref_mb is None or mb >= ref_mb)
        return "; ".join(parts), yes(ok)
    if w == "W2":
        return f">= 50% fio fdatasync ({fio_sync / 2:,.0f})", yes(None if mb is None else mb >= fio_sync / 2)
    if w == "W4":
        return f">= W1 ({fmt(w1_mb)})", yes(None if mb is None or w1_mb is None else mb >= w1_mb)
    if w == "W5":
        return "p99 <= 5 ms", yes(None if p99 is None else p99 <= 5.0)
    return "–", "–"


def half_rate(work, workload):
    rate = med([r["msg_per_s"] for r in sluice_runs(work, workload)])
    print(int(rate / 2) if rate else 100000)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "half-rate":
        half_rate(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "W1")
    elif len(sys.argv) >= 6 and sys.argv[1] == "table":
        table(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
    else:
        sys.exit(__doc__)
