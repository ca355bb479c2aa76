#!/usr/bin/env python3
"""Side-by-side: the same generated container metrics loaded into Osprey's store, Prometheus
and InfluxDB 1.x; prints bytes per sample, ingest rate and query latencies as ratios to Osprey.

Usage (from the repository root):
    bench/side_by_side.py [--containers 100] [--hours 24] [--long-containers 3] [--long-days 30]
                          [--work /tmp/osprey-sbs] [--b-containers 500 --b-hours 2]

Query (b) sums rate() over the network counters: 2 per container, so 200 series on 100
containers. `--b-containers 500` runs (b) on a separate "wide" dataset instead (500 containers
x `--b-hours` hours = 1000 network counters), loaded into each system next to the main one
(its own Osprey store, Prometheus directory and InfluxDB database).

Needs: `prometheus` and `promtool` (Debian package prometheus), `influxd` (Debian package
influxdb), cargo. Servers listen on 127.0.0.1 only and are stopped at the end.

How each system is loaded and measured (read the caveats in docs/benchmarks.md):
* Osprey: `cargo bench --bench storage` (in-process, one thread; queries in-process).
* Prometheus: `promtool tsdb create-blocks-from openmetrics` pinned to one core (ingest rate =
  samples / wall time), then the server is started on the blocks, left to compact until the
  block list is stable, and queried over HTTP (PromQL).
* InfluxDB: `influxd` pinned to one core, line protocol POSTed in 10 000-line batches by one
  client (ingest rate = samples / wall time), left to compact until the data directory is
  stable, queried over HTTP (InfluxQL).
Bytes per sample = bytes of the persistent data files (Prometheus blocks without WAL;
InfluxDB data directory without WAL) / samples.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARGO = ["cargo", "bench", "--bench", "storage", "--"]
# The caller's environment as is: cargo uses CARGO_TARGET_DIR when set,
# else the repository's own target directory.
ENV = dict(os.environ)
PROM_PORT, INFLUX_PORT = 19090, 18086


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("+", " ".join(cmd))
    return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, env=ENV, **kw).stdout


def du(path, exclude=()):
    total = 0
    for d, dirs, files in os.walk(path):
        dirs[:] = [x for x in dirs if x not in exclude]
        for f in files:
            try:
                total += os.path.getsize(os.path.join(d, f))
            except OSError:
                pass
    return total


def wait_until(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def wait_stable(measure, settle, timeout):
    """Polls `measure` until it has not changed for `settle` seconds (or timeout)."""
    last, since, deadline = None, time.time(), time.time() + timeout
    while time.time() < deadline:
        cur = measure()
        if cur != last:
            last, since = cur, time.time()
        elif time.time() - since >= settle:
            return cur
        time.sleep(1)
    return last


def http_ms(url, data=None, runs=11):
    times = []
    for i in range(runs + 1):
        t = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=600) as r:
            body = r.read()
        if i > 0:  # first run warms caches
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), body


def export(work, containers, hours, reuse):
    meta = os.path.join(work, "meta.json")
    if reuse and os.path.exists(meta):
        m = json.load(open(meta))
        return m["samples"], m["start"], m["end"]
    out = run(CARGO + ["--export", work, "--containers", str(containers), "--hours", str(hours)])
    m = re.search(r"exported (\d+) samples .* start_ms (\d+) end_ms (\d+)", out)
    res = int(m.group(1)), int(m.group(2)), int(m.group(3))
    json.dump({"samples": res[0], "start": res[1], "end": res[2]}, open(meta, "w"))
    return res


def split_openmetrics_by_day(path):
    """promtool (2.42) rescans its whole input once per 2 h block, so a month in one file takes
    hours; one file per day keeps the total work at 12 scans of the data."""
    out_dir = path + ".days"
    if os.path.isdir(out_dir):
        return sorted(os.path.join(out_dir, f) for f in os.listdir(out_dir))
    os.makedirs(out_dir)
    files, family = {}, {}
    type_line = None
    with open(path) as f:
        for line in f:
            if line.startswith("# TYPE"):
                type_line = line
                continue
            if line.startswith("# EOF"):
                continue
            day = int(float(line.rsplit(" ", 1)[1]) // 86400)
            if day not in files:
                files[day] = open(os.path.join(out_dir, f"{day}.om"), "w")
            fh = files[day]
            if family.get(day) is not type_line:
                fh.write(type_line)
                family[day] = type_line
            fh.write(line)
    for fh in files.values():
        fh.write("# EOF\n")
        fh.close()
    return sorted(os.path.join(out_dir, f) for f in os.listdir(out_dir))


def osprey(args):
    out = run(CARGO + ["--containers", str(args.containers), "--hours", str(args.hours),
                       "--long-containers", str(args.long_containers), "--long-days", str(args.long_days)])
    print(out)
    res = json.loads(re.search(r"^RESULT (.*)$", out, re.M).group(1))
    if args.b_containers:
        # The wide dataset's own run; only its (b) is used (its long part is minimal).
        out = run(CARGO + ["--containers", str(args.b_containers), "--hours", str(args.b_hours),
                           "--long-containers", "1", "--long-days", "1"])
        print(out)
        res["qb_ms"] = json.loads(re.search(r"^RESULT (.*)$", out, re.M).group(1))["qb_ms"]
    return res


QB_PROMQL = "sum(rate(container_network_receive_bytes_total[1m])) + sum(rate(container_network_transmit_bytes_total[1m]))"


def prometheus_qb_wide(args, wide):
    """Query (b) on the wide dataset, in its own Prometheus directory and server."""
    pdir = os.path.join(args.work, "prom-wide")
    shutil.rmtree(pdir, ignore_errors=True)
    os.makedirs(pdir)
    run(["taskset", "-c", "0", "promtool", "tsdb", "create-blocks-from", "openmetrics", "-q",
         os.path.join(wide["dir"], "data.om"), pdir])
    proc = subprocess.Popen(["taskset", "-c", "0", "prometheus", "--config.file=/dev/null",
                             f"--storage.tsdb.path={pdir}", "--storage.tsdb.retention.time=3650d",
                             f"--web.listen-address=127.0.0.1:{PROM_PORT}"],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(args.work, "prom-wide.log"), "w"))
    try:
        base = f"http://127.0.0.1:{PROM_PORT}"
        wait_until(lambda: urllib.request.urlopen(base + "/-/ready").status == 200, 120, "prometheus ready")
        blocks = lambda: sorted(x for x in os.listdir(pdir) if re.match(r"^[0-9A-Z]{26}$", x))
        wait_stable(blocks, 30, 600)
        end = wide["end"] / 1000
        ms, body = http_ms(base + "/api/v1/query_range?" + urllib.parse.urlencode(
            dict(query=QB_PROMQL, start=end - 3600, end=end, step=60)))
        log("prometheus (b, wide):", body[:160])
        return ms
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        shutil.rmtree(pdir, ignore_errors=True)


def prometheus(args, main, long_, wide=None):
    res = {}
    pdir = os.path.join(args.work, "prom")
    shutil.rmtree(pdir, ignore_errors=True)
    os.makedirs(pdir)
    inputs = [os.path.join(main["dir"], "data.om")] + split_openmetrics_by_day(os.path.join(long_["dir"], "data.om"))
    t = time.perf_counter()
    for path in inputs:
        run(["taskset", "-c", "0", "promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", path, pdir])
    secs = time.perf_counter() - t
    log(f"promtool import: {secs:.1f} s")
    samples = main["samples"] + long_["samples"]
    res["ingest_per_sec"] = samples / secs
    res["bytes_per_sample_imported"] = du(pdir, ("wal", "chunks_head")) / samples
    proc = subprocess.Popen(["taskset", "-c", "0", "prometheus", "--config.file=/dev/null",
                             f"--storage.tsdb.path={pdir}", "--storage.tsdb.retention.time=3650d",
                             f"--web.listen-address=127.0.0.1:{PROM_PORT}"],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(args.work, "prom.log"), "w"))
    try:
        base = f"http://127.0.0.1:{PROM_PORT}"
        wait_until(lambda: urllib.request.urlopen(base + "/-/ready").status == 200, 120, "prometheus ready")
        blocks = lambda: sorted(x for x in os.listdir(pdir) if re.match(r"^[0-9A-Z]{26}$", x))
        wait_stable(blocks, 30, 600)
        res["bytes_per_sample"] = du(pdir, ("wal", "chunks_head")) / samples
        q = lambda path, **p: base + path + "?" + urllib.parse.urlencode(p)
        end = main["end"] / 1000
        res["qa_ms"], body = http_ms(q("/api/v1/query", query='container_cpu_usage_seconds_total{pod=~"app-7-.*",container="c1",node="node-7"}[24h]', time=end - 0.001))
        log("prometheus (a):", body[:160])
        res["qb_ms"], body = http_ms(q("/api/v1/query_range", query=QB_PROMQL,
                                       start=end - 3600, end=end, step=60))
        log("prometheus (b):", body[:160])
        lend = long_["end"] / 1000
        res["qc_ms"], body = http_ms(q("/api/v1/query_range", query="max_over_time(container_memory_working_set_bytes[1h])",
                                       start=lend - args.long_days * 86400 + 3600, end=lend, step=3600), runs=5)
        log("prometheus (c):", body[:160])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    if wide:
        res["qb_ms"] = prometheus_qb_wide(args, wide)
    return res


def influx_load(base, db, path):
    with open(path, "rb") as f:
        batch = []
        for line in f:
            batch.append(line)
            if len(batch) == 10000:
                urllib.request.urlopen(urllib.request.Request(base + f"/write?db={db}&precision=ms", data=b"".join(batch))).read()
                batch = []
        if batch:
            urllib.request.urlopen(urllib.request.Request(base + f"/write?db={db}&precision=ms", data=b"".join(batch))).read()


def influx(args, main, long_, wide=None):
    res = {}
    idir = os.path.join(args.work, "influx")
    shutil.rmtree(idir, ignore_errors=True)
    os.makedirs(idir)
    conf = os.path.join(idir, "influxdb.conf")
    with open(conf, "w") as f:
        f.write(f"""reporting-disabled = true
bind-address = "127.0.0.1:18088"
[meta]
  dir = "{idir}/meta"
[data]
  dir = "{idir}/data"
  wal-dir = "{idir}/wal"
  cache-snapshot-write-cold-duration = "10s"
  compact-full-write-cold-duration = "30s"
  max-series-per-database = 0
  max-values-per-tag = 0
[coordinator]
  query-timeout = "0s"
[http]
  bind-address = "127.0.0.1:{INFLUX_PORT}"
  log-enabled = false
  max-body-size = 0
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
""")
    proc = subprocess.Popen(["taskset", "-c", "0", "influxd", "-config", conf],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(args.work, "influx.log"), "w"))
    base = f"http://127.0.0.1:{INFLUX_PORT}"
    try:
        wait_until(lambda: urllib.request.urlopen(base + "/ping").status == 204, 120, "influxd ready")
        urllib.request.urlopen(urllib.request.Request(base + "/query", data=b"q=CREATE+DATABASE+bench")).read()
        t = time.perf_counter()
        for d in (main, long_):
            influx_load(base, "bench", os.path.join(d["dir"], "data.lp"))
        secs = time.perf_counter() - t
        samples = main["samples"] + long_["samples"]
        res["ingest_per_sec"] = samples / secs
        wait_stable(lambda: du(os.path.join(idir, "data")) + du(os.path.join(idir, "wal")), 40, 900)
        res["bytes_per_sample"] = du(os.path.join(idir, "data")) / samples

        if wide:
            # Loaded after the timed ingest and the size measurement: only (b) reads it.
            urllib.request.urlopen(urllib.request.Request(base + "/query", data=b"q=CREATE+DATABASE+wide")).read()
            influx_load(base, "wide", os.path.join(wide["dir"], "data.lp"))

        def q(sql, runs=11, db="bench"):
            url = base + "/query?" + urllib.parse.urlencode({"db": db, "q": sql, "epoch": "ms"})
            ms, body = http_ms(url, runs=runs)
            log("influx:", body[:160])
            return ms

        end = main["end"] * 1_000_000  # ns
        h = 3600 * 10**9
        res["qa_ms"] = q(f"SELECT value FROM container_cpu_usage_seconds_total WHERE pod =~ /^app-7-/ AND container = 'c1' AND node = 'node-7' AND time > {end - 24 * h} AND time <= {end}")
        bend = wide["end"] * 1_000_000 if wide else end
        res["qb_ms"] = q("SELECT sum(d) FROM (SELECT non_negative_derivative(value, 1s) AS d FROM "
                         "container_network_receive_bytes_total, container_network_transmit_bytes_total "
                         f"WHERE time > {bend - h} AND time <= {bend} GROUP BY *) WHERE time > {bend - h} AND time <= {bend} GROUP BY time(1m)",
                         db="wide" if wide else "bench")
        lend = long_["end"] * 1_000_000
        res["qc_ms"] = q(f"SELECT max(value) FROM container_memory_working_set_bytes WHERE time > {lend - args.long_days * 24 * h} AND time <= {lend} GROUP BY time(1h), *", runs=5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=100)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--long-containers", type=int, default=3)
    ap.add_argument("--long-days", type=int, default=30)
    ap.add_argument("--work", default="/tmp/osprey-sbs")
    ap.add_argument("--b-containers", type=int, default=0,
                    help="run query (b) on a separate dataset of this many containers (2 network counters each)")
    ap.add_argument("--b-hours", type=int, default=2, help="hours of the (b) dataset")
    ap.add_argument("--skip", default="", help="comma list of: prometheus,influxdb")
    ap.add_argument("--reuse", action="store_true", help="reuse exported data in --work")
    ap.add_argument("--osprey-result", help="reuse an Osprey RESULT json instead of running the benchmark")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    main_d = {"dir": os.path.join(args.work, "main")}
    long_d = {"dir": os.path.join(args.work, "long")}
    main_d["samples"], main_d["start"], main_d["end"] = export(main_d["dir"], args.containers, args.hours, args.reuse)
    long_d["samples"], long_d["start"], long_d["end"] = export(long_d["dir"], args.long_containers, args.long_days * 24, args.reuse)
    wide_d = None
    if args.b_containers:
        wide_d = {"dir": os.path.join(args.work, "wide")}
        wide_d["samples"], wide_d["start"], wide_d["end"] = export(wide_d["dir"], args.b_containers, args.b_hours, args.reuse)
    results = {"osprey": json.loads(args.osprey_result) if args.osprey_result else osprey(args)}
    for name, fn in (("prometheus", prometheus), ("influxdb", influx)):
        if name in args.skip:
            continue
        try:
            results[name] = fn(args, main_d, long_d, wide_d)
            log(f"{name}: {json.dumps(results[name])}")
        except Exception as e:  # report what was measured for the others
            log(f"{name} failed: {e!r}")
    o = results["osprey"]
    print(f"\ndataset: {args.containers} containers x 13 series x {args.hours} h at 10 s "
          f"({main_d['samples']} samples) + {args.long_containers} containers x {args.long_days} d "
          f"({long_d['samples']} samples)")
    nb = 2 * (args.b_containers or args.containers)
    print(f"query (b) sums {nb} network counters" + (f" of a separate {args.b_containers}-container x {args.b_hours} h dataset" if wide_d else ""))
    print(f"{'system':<12} {'B/sample':>9} {'ingest/s':>12} {'(a) ms':>9} {'(b) ms':>9} {'(c) ms':>9}")
    for name, r in results.items():
        print(f"{name:<12} {r['bytes_per_sample']:>9.3f} {r['ingest_per_sec']:>12.0f} {r['qa_ms']:>9.3f} {r['qb_ms']:>9.3f} {r['qc_ms']:>9.3f}")
    print("\nratios to Osprey (B/sample and latency: other/Osprey, >1 means Osprey is better;"
          " ingest: Osprey/other)")
    for name, r in results.items():
        if name == "osprey":
            continue
        print(f"{name:<12} B/sample {r['bytes_per_sample'] / o['bytes_per_sample']:.2f}x  "
              f"ingest {o['ingest_per_sec'] / r['ingest_per_sec']:.2f}x  "
              f"(a) {r['qa_ms'] / o['qa_ms']:.1f}x  (b) {r['qb_ms'] / o['qb_ms']:.1f}x  (c) {r['qc_ms'] / o['qc_ms']:.1f}x")
    if "prometheus" in results:
        print(f"prometheus bytes/sample as imported (2 h blocks, before compaction): {results['prometheus']['bytes_per_sample_imported']:.3f}")
    print("\nRESULTS " + json.dumps(results))


if __name__ == "__main__":
    main()
