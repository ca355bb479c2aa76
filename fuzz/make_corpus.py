#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/<target>/: small valid inputs in
each format (the shapes the unit tests and fixtures use), from which the
fuzzer mutates. Run from fuzz/; the output is committed."""
import os, struct

def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80); n >>= 7
    out.append(n)
    return bytes(out)

def key(field, wire): return varint(field << 3 | wire)
def ld(field, payload): return key(field, 2) + varint(len(payload)) + payload
def s(field, text): return ld(field, text.encode())
def vi(field, n): return key(field, 0) + varint(n & 0xFFFFFFFFFFFFFFFF)
def f64(field, x): return key(field, 1) + struct.pack('<d', x)

def snappy(raw):
    """Snappy block format with literals only (valid, uncompressed)."""
    out = bytearray(varint(len(raw)))
    for i in range(0, len(raw), 65536):
        chunk = raw[i:i + 65536]; n = len(chunk) - 1
        if n < 60: out.append(n << 2)
        elif n < 256: out += bytes([60 << 2, n])
        else: out += bytes([61 << 2]) + struct.pack('<H', n)
        out += chunk
    return bytes(out)

def write_request(series):
    body = b''
    for labels, samples in series:
        ts = b''.join(ld(1, s(1, k) + s(2, v)) for k, v in labels)
        ts += b''.join(ld(2, f64(1, v) + vi(2, t)) for t, v in samples)
        body += ld(1, ts)
    return body

def push_request(streams):
    body = b''
    for labels, entries in streams:
        st = s(1, labels)
        for sec, nanos, line in entries:
            st += ld(2, ld(1, vi(1, sec) + vi(2, nanos)) + s(2, line))
        body += ld(1, st)
    return body

corpus = {}
def add(target, name, data):
    corpus.setdefault(target, []).append((name, data if isinstance(data, bytes) else data.encode()))

T = 1764198000000
wr = write_request([
    ([("__name__", "container_cpu_usage_seconds_total"), ("container", "web"), ("namespace", "prod"), ("pod", "web-1")],
     [(T, 12.5), (T + 15000, 13.0)]),
    ([("__name__", "machine_memory_bytes"), ("node", "node-1")], [(T, 8.0e9)]),
])
add("remote_write_proto", "two_series", wr)
add("remote_write_proto", "empty_series", write_request([([("__name__", "up")], [])]))
add("remote_write_snappy", "two_series", snappy(wr))
add("remote_write_snappy", "one_sample", snappy(write_request([([("__name__", "up"), ("job", "a")], [(T, 1.0)])])))

pr = push_request([('{namespace="prod", pod="web-1", container="web", stream="stdout"}',
                    [(1764198000, 123456789, "GET /healthz 200"), (1764198001, 0, "level=error msg=\"connection refused\"")]),
                   ('{job="osprey/containers"}', [(1764198002, 5, "plain line")])])
add("loki_push_proto", "raw_message", b"\x01" + pr)
add("loki_push_proto", "snappy_body", b"\x00" + snappy(pr))
add("loki_push_json", "two_streams",
    '{"streams":[{"stream":{"namespace":"prod","pod":"web-1"},"values":[["1764198000123456789","GET / 200"],'
    '["1764198000223456789","level=warn slow",{"trace_id":"abc"}]]},{"stream":{"job":"varlogs"},"values":[]}]}')
add("loki_push_json", "empty", '{"streams":[]}')

v1 = {
    0: "123456789012\n",
    1: "user 4242\nsystem 1717\n",
    3: "nr_periods 10\nnr_throttled 2\nthrottled_time 3000000\n",
    4: "cache 4096\nrss 8192\nmapped_file 0\nswap 0\npgfault 10\npgmajfault 1\ntotal_cache 4096\ntotal_rss 8192\ntotal_active_file 100\ntotal_inactive_file 200\n",
    5: "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    6: "1\n",
    7: "8:0 Read 10\n8:0 Write 20\n8:0 Sync 5\n8:0 Async 25\n8:0 Total 30\nTotal 30\n\x008:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n",
    8: "8:16 Read 512\n8:16 Write 0\nTotal 512\n",
}
for k, text in v1.items():
    add("cgroup_v1", f"file_{k}", bytes([k]) + text.encode())
v2 = {
    0: "usage_usec 1000\nuser_usec 600\nsystem_usec 400\nnr_periods 5\nnr_throttled 1\nthrottled_usec 250\n",
    1: "anon 4096\nfile 8192\nkernel_stack 0\nshmem 0\nfile_mapped 12\nactive_file 100\ninactive_file 200\npgfault 10\npgmajfault 1\n",
    2: "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n",
    3: "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=0 wbytes=0 rios=0 wios=0\n",
    4: "some avg10=0.00 avg60=1.50 avg300=0.20 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    5: "max 100000\n",
    6: "max\n",
    7: "-5\n",
    8: "low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\n",
    9: "100\n",
    10: "8:0 253:1 259:0\n",
}
for k, text in v2.items():
    add("cgroup_v2", f"file_{k}", bytes([k]) + text.encode())

add("mountinfo", "host",
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
    "25 22 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd\n"
    "27 25 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
    "28 25 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    "40 22 8:2 / /var/lib/my\\040data rw - xfs /dev/sdb1 rw\n")
add("mountinfo", "unified", "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n")

add("container_log_line", "cri_full", "2016-10-06T00:17:09.669794202Z stdout F The content of the log entry")
add("container_log_line", "cri_partial", "2016-10-06T00:17:09.669794202+02:00 stderr P part one ")
add("container_log_line", "docker_json", '{"log":"GET / 200\\n","stream":"stdout","time":"2026-11-26T23:00:00.123456789Z"}')
add("container_log_line", "docker_json_escapes", '{"log":"caf\\u00e9 \\ud83d\\ude00 \\t\\"q\\"","stream":"stderr","time":"2026-11-26T23:00:00Z"}')
add("container_log_line", "plain", "just some text")

for i, q in enumerate([
    'sum by (namespace) (rate(container_cpu_usage_seconds_total{namespace=~"prod|dev"}[5m]))',
    'histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))',
    'requests_total / ignoring(pod) group_left memory_bytes offset 1m @ 1700000300',
    'max_over_time(requests_total[10m:1m]) > bool 5 or vector(1)',
    'topk(2, memory_bytes) and on(pod) label_replace(requests_total, "x", "$1", "pod", "web-(.*)")',
    'absent(nothing{a="b"}) * -Inf + 0x1F - 1e3 % 7 ^ 2',
    'count_values("v", requests_total) unless predict_linear(memory_bytes[5m], 60)',
]):
    add("promql_query", f"q{i}", q)

for i, q in enumerate([
    "query=up&time=1700000000.5&timeout=30s",
    "query=rate(x%5B5m%5D)&start=2026-11-26T00:00:00Z&end=2026-11-26T01:00:00Z&step=15",
    "match[]=up&match[]=%7Bjob%3D%22a%22%7D&start=1&end=2",
    "query=%7Bnamespace%3D%22prod%22%7D%20%7C%3D%20%22error%22&limit=100&direction=forward&start=1700000000000000000&end=1700000060",
    "query=level%3Aerror&start=1700000000&end=1700003600&step=1m&cursor=1700000000000000000_42&limit=5",
]):
    add("query_params", f"p{i}", q)

for i, q in enumerate([
    '{namespace="prod", pod=~"web-.*"} |= "error" != "debug" |~ "time(out|d)" !~ "^GET"',
    '{job="osprey/containers"}',
    '{a!="b", c!~"d+", e="f"}',
    '{namespace="a\\"b\\\\c"}',
]):
    add("logql", f"q{i}", q)

for i, p in enumerate([
    "nodes/node-1/metrics/cpu/usage?start=2026-11-26T10:00:00Z&end=2026-11-26T11:00:00Z",
    "namespaces/prod/pods/web-1/containers/web/metrics/memory/usage?labels=resource_id:sda",
    "namespaces/prod/pod-list/web-1,web-2/metrics/cpu/usage_rate",
    "nodes/node-1/freecontainers/kubelet/metrics/",
    "namespaces/a%2Fb/pods/",
    "debug/allkeys",
]):
    add("heapster_path", f"p{i}", p)

for target, files in corpus.items():
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in files:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
print({t: len(f) for t, f in corpus.items()})
