// The cluster overview and its drill-downs: nodes, node → containers,
// namespace → pod → containers, and one container with its charts, labels
// and a link to its logs. Everything comes from PromQL over the
// cAdvisor-named series the agents ship.

import { instant } from './api.js';
import { fmt, pct } from './units.js';
import { el, sortableTable, bar, searchBox } from './table.js';
import { chartPanel } from './page.js';

const enc = encodeURIComponent;
const RATE = '[1m]';

const TAG = 'osprey_query';

/**
 * Runs named instant queries as one request: each result is tagged with
 * its name by label_replace and the parts are joined with `or` (distinct
 * tags never match, so every series stays). One request instead of ten
 * keeps the page clear of the browser's six-connections-per-host queue.
 * Returns {name: Map(key → value), labels: Map(key → metric)}, keyed by keyFn(metric).
 */
async function vectors(queries, keyFn, signal) {
  const names = Object.keys(queries);
  const expr = names.map((n) => `label_replace(${queries[n]}, "${TAG}", "${n}", "", "")`).join(' or ');
  const result = await instant(expr, signal);
  const out = Object.fromEntries(names.map((n) => [n, new Map()]));
  const labels = new Map();
  for (const s of result) {
    const { [TAG]: name, ...metric } = s.metric;
    if (!out[name]) continue;
    const k = keyFn(metric);
    out[name].set(k, Number(s.value[1]));
    if (!labels.has(k)) labels.set(k, metric);
  }
  out.labels = labels;
  return out;
}

const esc = (v) => String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"');

/**
 * Node → address: the `address` label of `machine_info` (shipped by the
 * Osprey agent), else the `instance` of `machine_cpu_cores` (as
 * Prometheus-style senders set it). `sel` narrows to some nodes.
 */
async function nodeAddresses(sel, signal) {
  const and = sel ? `${sel},` : '';
  const v = await vectors({
    info: `count by (node, address) (machine_info{${and}address!=""})`,
    instance: `count by (node, instance) (machine_cpu_cores{${and}instance!=""})`,
  }, (m) => `${m.node}\u0000${m.address ?? m.instance}`, signal);
  const addr = new Map();
  for (const [k, m] of v.labels) {
    if (v.instance.has(k) && !addr.has(m.node)) addr.set(m.node, m.instance);
    if (v.info.has(k)) addr.set(m.node, m.address);
  }
  return addr;
}

export async function overviewPage(main, page) {
  main.replaceChildren(el('h1', {}, 'Cluster overview'));
  const toolbar = el('div', { class: 'toolbar' });
  const nodesBox = el('div', { id: 'nodes' });
  const charts = el('div', { class: 'charts' },
    chartPanel(page, 'CPU by node', [{ expr: `sum by (node) (rate(container_cpu_usage_seconds_total{id="/"}${RATE}))`, legend: '{{node}}' }], { unit: 'cores', legend: 'list' }),
    chartPanel(page, 'Memory working set by node', [{ expr: 'sum by (node) (container_memory_working_set_bytes{id="/"})', legend: '{{node}}' }], { unit: 'bytes', legend: 'list' }));
  const nsBox = el('div', { id: 'namespaces' });
  main.append(toolbar, nodesBox, el('h2', {}, 'Namespaces'), nsBox, el('h2', {}, 'Usage over time'), charts);

  const q = {
    cores: 'max by (node) (machine_cpu_cores)',
    mem: 'max by (node) (machine_memory_bytes)',
    cpu: `sum by (node) (rate(container_cpu_usage_seconds_total{id="/"}${RATE}))`,
    ws: 'sum by (node) (container_memory_working_set_bytes{id="/"})',
    fs: 'sum by (node) (container_fs_usage_bytes{id="/"})',
    fsl: 'sum by (node) (container_fs_limit_bytes{id="/"})',
    rx: `sum by (node) (rate(container_network_receive_bytes_total{id="/"}${RATE}))`,
    tx: `sum by (node) (rate(container_network_transmit_bytes_total{id="/"}${RATE}))`,
    n: 'count by (node) (container_cpu_usage_seconds_total{id!="/"})',
  };
  // Namespaces (grouping of pods' containers) are queried at the same time.
  const nsPromise = vectors({
    cpu: `sum by (namespace) (rate(container_cpu_usage_seconds_total{namespace!="",container!=""}${RATE}))`,
    ws: 'sum by (namespace) (container_memory_working_set_bytes{namespace!="",container!=""})',
    pods: 'count by (namespace) (count by (namespace, pod) (container_cpu_usage_seconds_total{namespace!=""}))',
  }, (m) => m.namespace || '', page.signal);
  const [v, addr] = await Promise.all([
    vectors(q, (m) => m.node || '', page.signal),
    nodeAddresses('', page.signal),
  ]);
  const nodes = [...new Set([...v.cores.keys(), ...v.cpu.keys()])].filter(Boolean);
  const rows = nodes.map((n) => ({
    key: n, node: n, address: addr.get(n) || '',
    cpu: v.cpu.get(n), cores: v.cores.get(n), cpuPct: 100 * (v.cpu.get(n) ?? NaN) / (v.cores.get(n) ?? NaN),
    ws: v.ws.get(n), mem: v.mem.get(n), memPct: 100 * (v.ws.get(n) ?? NaN) / (v.mem.get(n) ?? NaN),
    fs: v.fs.get(n), fsl: v.fsl.get(n), fsPct: 100 * (v.fs.get(n) ?? NaN) / (v.fsl.get(n) ?? NaN),
    rx: v.rx.get(n), tx: v.tx.get(n), n: v.n.get(n) ?? 0,
  }));
  const t = sortableTable(nodesBox, [
    { key: 'node', title: 'Node', render: (r) => el('a', { href: `#/node/${enc(r.node)}` }, r.node) },
    { key: 'address', title: 'Address', render: (r) => r.address || '–' },
    { key: 'cpu', title: 'CPU', num: true, render: (r) => `${fmt(r.cpu, 'cores')} / ${fmt(r.cores)}` },
    { key: 'cpuPct', title: 'CPU %', num: true, render: (r) => el('span', {}, pct(r.cpuPct), bar(r.cpuPct / 100)) },
    { key: 'ws', title: 'Memory', num: true, render: (r) => `${fmt(r.ws, 'bytes')} / ${fmt(r.mem, 'bytes')}` },
    { key: 'memPct', title: 'Memory %', num: true, render: (r) => el('span', {}, pct(r.memPct), bar(r.memPct / 100)) },
    { key: 'fs', title: 'Disk', num: true, render: (r) => `${fmt(r.fs, 'bytes')} / ${fmt(r.fsl, 'bytes')}` },
    { key: 'fsPct', title: 'Disk %', num: true, render: (r) => el('span', {}, pct(r.fsPct), bar(r.fsPct / 100)) },
    { key: 'rx', title: 'Net in', num: true, render: (r) => fmt(r.rx, 'Bps') },
    { key: 'tx', title: 'Net out', num: true, render: (r) => fmt(r.tx, 'Bps') },
    { key: 'n', title: 'Containers', num: true },
  ], rows, { sort: 'node', desc: false, id: 'nodes-table' });
  toolbar.append(searchBox((s) => t.setFilter(s), 'Filter nodes…'));

  const ns = await nsPromise;
  const nsRows = [...ns.pods.keys()].map((n) => ({ key: n, namespace: n, pods: ns.pods.get(n), cpu: ns.cpu.get(n), ws: ns.ws.get(n) }));
  if (!nsRows.length) nsBox.append(el('p', { class: 'muted' }, 'No Kubernetes pods reported (containers without a namespace are listed on their node).'));
  else {
    const nt = sortableTable(nsBox, [
      { key: 'namespace', title: 'Namespace', render: (r) => el('a', { href: `#/ns/${enc(r.namespace)}` }, r.namespace) },
      { key: 'pods', title: 'Pods', num: true },
      { key: 'cpu', title: 'CPU', num: true, render: (r) => fmt(r.cpu, 'cores') },
      { key: 'ws', title: 'Memory', num: true, render: (r) => fmt(r.ws, 'bytes') },
    ], nsRows, { sort: 'namespace', desc: false, id: 'namespaces-table' });
    nsBox.prepend(searchBox((s) => nt.setFilter(s), 'Filter namespaces…'));
  }
}

function containerName(m) {
  if (m.pod && m.container) return `${m.pod}/${m.container}`;
  return m.name || m.container || m.id;
}

/** The containers matching `sel` (a PromQL label selector body), as a table. */
async function containersTable(box, sel, page, { showNode = false } = {}) {
  const key = (m) => `${m.node}\u0000${m.id}`;
  const v = await vectors({
    cpu: `rate(container_cpu_usage_seconds_total{${sel}}${RATE})`,
    cpulim: `container_spec_cpu_quota{${sel}} / container_spec_cpu_period{${sel}}`,
    ws: `container_memory_working_set_bytes{${sel}}`,
    memlim: `container_spec_memory_limit_bytes{${sel}}`,
  }, key, page.signal);
  const rows = [...v.labels.entries()].filter(([k]) => v.cpu.has(k) || v.ws.has(k)).map(([k, m]) => ({
    key: m.id, m, name: containerName(m), node: m.node, namespace: m.namespace || '', pod: m.pod || '',
    image: m.image || '', cpu: v.cpu.get(k), cpulim: v.cpulim.get(k), ws: v.ws.get(k),
    memlim: v.memlim.get(k) > 0 && v.memlim.get(k) < 2 ** 60 ? v.memlim.get(k) : undefined,
  }));
  const link = (r) => `#/container?node=${enc(r.node)}&id=${enc(r.m.id)}`;
  const cols = [
    { key: 'name', title: 'Container', render: (r) => el('a', { href: link(r), class: 'container-link' }, r.name), text: (r) => `${r.name} ${r.m.id}` },
    ...(showNode ? [{ key: 'node', title: 'Node' }] : []),
    { key: 'namespace', title: 'Namespace' },
    { key: 'pod', title: 'Pod' },
    { key: 'cpu', title: 'CPU', num: true, render: (r) => fmt(r.cpu, 'cores') },
    { key: 'cpulim', title: 'CPU limit', num: true, render: (r) => (r.cpulim > 0 ? fmt(r.cpulim, 'cores') : '–') },
    { key: 'ws', title: 'Memory', num: true, render: (r) => fmt(r.ws, 'bytes') },
    { key: 'memlim', title: 'Memory limit', num: true, render: (r) => (r.memlim ? el('span', {}, fmt(r.memlim, 'bytes'), bar(r.ws / r.memlim)) : '–') },
    { key: 'image', title: 'Image' },
  ];
  const t = sortableTable(box, cols, rows, { sort: 'cpu', id: 'containers-table' });
  box.prepend(el('div', { class: 'toolbar' }, searchBox((s) => t.setFilter(s), 'Filter containers…'), el('span', { class: 'muted' }, `${rows.length} containers`)));
}

export async function nodePage(main, page, node) {
  const sel = `node="${esc(node)}"`;
  const box = el('div');
  const address = el('span', { class: 'muted', id: 'node-address' });
  main.replaceChildren(
    el('h1', {}, el('a', { href: '#/' }, 'Overview'), ' › ', node, ' ', address),
    el('div', { class: 'charts' },
      chartPanel(page, 'CPU vs capacity', [
        { expr: `sum(rate(container_cpu_usage_seconds_total{${sel},id="/"}${RATE}))`, legend: 'usage' },
        { expr: `max(machine_cpu_cores{${sel}})`, legend: 'capacity' }], { unit: 'cores', legend: 'list' }),
      chartPanel(page, 'Memory vs capacity', [
        { expr: `sum(container_memory_usage_bytes{${sel},id="/"})`, legend: 'usage' },
        { expr: `sum(container_memory_working_set_bytes{${sel},id="/"})`, legend: 'working set' },
        { expr: `max(machine_memory_bytes{${sel}})`, legend: 'capacity' }], { unit: 'bytes', legend: 'list' })),
    el('h2', {}, 'Containers'), box);
  const [addr] = await Promise.all([nodeAddresses(sel, page.signal), containersTable(box, `${sel},id!="/"`, page)]);
  address.textContent = addr.get(node) || '';
  address.dataset.value = addr.get(node) || '';
}

export async function namespacePage(main, page, ns) {
  const sel = `namespace="${esc(ns)}"`;
  main.replaceChildren(el('h1', {}, el('a', { href: '#/' }, 'Overview'), ' › ', `namespace ${ns}`));
  const v = await vectors({
    cpu: `sum by (pod) (rate(container_cpu_usage_seconds_total{${sel},container!=""}${RATE}))`,
    ws: `sum by (pod) (container_memory_working_set_bytes{${sel},container!=""})`,
    n: `count by (pod) (container_cpu_usage_seconds_total{${sel},container!=""})`,
    node: `count by (pod, node) (container_cpu_usage_seconds_total{${sel}})`,
  }, (m) => m.pod || '', page.signal);
  const rows = [...v.n.keys()].filter(Boolean).map((p) => ({ key: p, pod: p, n: v.n.get(p), cpu: v.cpu.get(p), ws: v.ws.get(p), node: v.labels.get(p)?.node || '' }));
  const box = el('div');
  main.append(box);
  const t = sortableTable(box, [
    { key: 'pod', title: 'Pod', render: (r) => el('a', { href: `#/pod/${enc(ns)}/${enc(r.pod)}` }, r.pod) },
    { key: 'node', title: 'Node' },
    { key: 'n', title: 'Containers', num: true },
    { key: 'cpu', title: 'CPU', num: true, render: (r) => fmt(r.cpu, 'cores') },
    { key: 'ws', title: 'Memory', num: true, render: (r) => fmt(r.ws, 'bytes') },
  ], rows, { sort: 'pod', desc: false, id: 'pods-table' });
  box.prepend(searchBox((s) => t.setFilter(s), 'Filter pods…'));
}

export async function podPage(main, page, ns, pod) {
  const sel = `namespace="${esc(ns)}",pod="${esc(pod)}"`;
  const box = el('div');
  main.replaceChildren(
    el('h1', {}, el('a', { href: '#/' }, 'Overview'), ' › ', el('a', { href: `#/ns/${enc(ns)}` }, ns), ' › ', pod),
    el('p', {}, el('a', { href: `#/logs?query=${enc(`namespace:"${ns}" AND pod:"${pod}"`)}`, class: 'logs-link' }, 'Logs of this pod')),
    el('div', { class: 'charts' },
      chartPanel(page, 'CPU by container', [{ expr: `sum by (container) (rate(container_cpu_usage_seconds_total{${sel},container!=""}${RATE}))`, legend: '{{container}}' }], { unit: 'cores' }),
      chartPanel(page, 'Memory by container', [{ expr: `sum by (container) (container_memory_working_set_bytes{${sel},container!=""})`, legend: '{{container}}' }], { unit: 'bytes' })),
    el('h2', {}, 'Containers'), box);
  await containersTable(box, `${sel}`, page, { showNode: true });
}

export async function containerPage(main, page, params) {
  const node = params.get('node') || '';
  const id = params.get('id') || '';
  const sel = `node="${esc(node)}",id="${esc(id)}"`;
  const series = await instant(`container_cpu_usage_seconds_total{${sel}}`, page.signal);
  const labels = series[0] ? series[0].metric : {};
  const name = containerName({ ...labels, id });
  const logsQuery = labels.pod
    ? `namespace:"${labels.namespace || ''}" AND pod:"${labels.pod}"${labels.container ? ` AND container:"${labels.container}"` : ''}`
    : `node:"${node}"`;
  const labelRows = Object.entries(labels).filter(([k]) => k !== '__name__' && k !== 'cpu').sort();
  const charts = el('div', { class: 'charts' },
    chartPanel(page, 'CPU vs limit', [
      { expr: `rate(container_cpu_usage_seconds_total{${sel}}${RATE})`, legend: 'usage' },
      { expr: `container_spec_cpu_quota{${sel}} / container_spec_cpu_period{${sel}}`, legend: 'limit' }], { unit: 'cores' }),
    chartPanel(page, 'Memory vs limit', [
      { expr: `container_memory_usage_bytes{${sel}}`, legend: 'usage' },
      { expr: `container_memory_working_set_bytes{${sel}}`, legend: 'working set' },
      { expr: `container_spec_memory_limit_bytes{${sel}} < 2^60`, legend: 'limit' }], { unit: 'bytes' }),
    chartPanel(page, 'Network', [
      { expr: `sum(rate(container_network_receive_bytes_total{${sel}}${RATE}))`, legend: 'received' },
      { expr: `sum(rate(container_network_transmit_bytes_total{${sel}}${RATE}))`, legend: 'sent' }], { unit: 'Bps' }),
    chartPanel(page, 'Filesystem', [
      { expr: `sum(container_fs_usage_bytes{${sel}})`, legend: 'usage' },
      { expr: `sum(rate(container_fs_reads_bytes_total{${sel}}${RATE}))`, legend: 'reads/s' },
      { expr: `sum(rate(container_fs_writes_bytes_total{${sel}}${RATE}))`, legend: 'writes/s' }], { unit: 'bytes' }));
  main.replaceChildren(
    el('h1', {}, el('a', { href: '#/' }, 'Overview'), ' › ', el('a', { href: `#/node/${enc(node)}` }, node), ' › ', name),
    el('p', {}, el('a', { href: `#/logs?query=${enc(logsQuery)}`, class: 'logs-link', id: 'container-logs' }, 'Logs of this container'),
      ' · ', el('span', { class: 'muted' }, id)),
    charts,
    el('h2', {}, 'Labels'),
    el('table', { class: 'data labels' }, labelRows.map(([k, v2]) => el('tr', {}, el('td', {}, k), el('td', {}, v2)))));
  if (!series.length) main.insertBefore(el('p', { class: 'notice' }, 'This container has not reported recently.'), charts);
}
