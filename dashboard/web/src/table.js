// Sortable, searchable tables. Columns: {key, title, num, render(row) →
// Node|string, value(row) → sort value}. Each cell carries data-col and,
// for numbers, data-value (tests and benchmarks read them).

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e[k] = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

export function sortableTable(container, columns, rows, { sort, desc = true, search = '', id } = {}) {
  let key = sort || columns[0].key;
  let descending = desc;
  let filter = search.toLowerCase();
  const table = el('table', { class: 'data', id });
  container.append(table);
  const value = (c, r) => (c.value ? c.value(r) : r[c.key]);
  function draw() {
    table.innerHTML = '';
    const head = el('tr');
    for (const c of columns) {
      const th = el('th', { class: `${c.num ? 'num' : ''} ${c.key === key ? `sorted${descending ? '' : ' asc'}` : ''}`, dataset: { col: c.key } }, c.title);
      th.onclick = () => { if (key === c.key) descending = !descending; else { key = c.key; descending = Boolean(c.num); } draw(); };
      head.append(th);
    }
    table.append(el('thead', {}, head));
    const col = columns.find((c) => c.key === key) || columns[0];
    const shown = rows.filter((r) => !filter || columns.some((c) => String(c.text ? c.text(r) : value(c, r) ?? '').toLowerCase().includes(filter)));
    shown.sort((a, b) => {
      const x = value(col, a); const y = value(col, b);
      const cmp = (x ?? -Infinity) < (y ?? -Infinity) ? -1 : (x ?? -Infinity) > (y ?? -Infinity) ? 1 : 0;
      return descending ? -cmp : cmp;
    });
    const body = el('tbody');
    for (const r of shown) {
      const tr = el('tr', { dataset: { key: r.key ?? '' } });
      for (const c of columns) {
        const v = value(c, r);
        const td = el('td', { class: c.num ? 'num' : '', dataset: { col: c.key } });
        if (c.num && typeof v === 'number' && Number.isFinite(v)) td.dataset.value = String(v);
        const shownV = c.render ? c.render(r) : v;
        if (shownV !== null && shownV !== undefined) td.append(shownV instanceof Node ? shownV : String(shownV));
        tr.append(td);
      }
      body.append(tr);
    }
    table.append(body);
    if (!shown.length) body.append(el('tr', {}, el('td', { colspan: columns.length, class: 'muted' }, rows.length ? 'No match.' : 'Nothing reported yet.')));
  }
  draw();
  return {
    setFilter(f) { filter = f.toLowerCase(); draw(); },
    setRows(r) { rows = r; draw(); },
  };
}

export function bar(fraction) {
  const f = Math.max(0, Math.min(1, fraction || 0));
  return el('span', { class: `bar ${f > 0.9 ? 'crit' : f > 0.75 ? 'warn' : ''}` }, el('i', { style: `width:${(f * 100).toFixed(1)}%` }));
}

export function searchBox(onInput, placeholder = 'Search…') {
  const i = el('input', { type: 'search', placeholder, class: 'search' });
  i.oninput = () => onInput(i.value);
  return i;
}
