// The dashboard's entry point: hash routes, the top bar (time picker,
// user) and one Page object per visit (its requests are aborted and its
// listeners removed on navigation).

import { api, whoami } from './api.js';
import { mountPicker, readUrl, timeState } from './time.js';
import { Page } from './page.js';
import { el } from './table.js';
import { overviewPage, nodePage, namespacePage, podPage, containerPage } from './overview.js';
import { dashboardsPage, dashboardPage } from './dashboard.js';
import { logsPage } from './logs.js';
import { loginPage } from './login.js';
import { alertsPage } from './alerts.js';

const main = document.getElementById('main');
let page = null;
let who = null;

function parse() {
  const h = (location.hash || '#/').slice(1);
  const i = h.indexOf('?');
  const path = i < 0 ? h : h.slice(0, i);
  const params = new URLSearchParams(i < 0 ? '' : h.slice(i + 1));
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params };
}

function drawWho() {
  const box = document.getElementById('who');
  if (!who) { box.replaceChildren(); return; }
  box.replaceChildren(`${who.user} (${who.role === 'admin' ? 'admin' : 'viewer'})`);
  if (who.auth) box.append(el('button', { id: 'logout', onclick: async () => { await api('/api/v1/logout', { method: 'POST' }); location.hash = '#/login'; location.reload(); } }, 'Log out'));
}

async function route() {
  if (page) page.dispose();
  for (const d of document.querySelectorAll('dialog')) d.remove(); // a dialog belongs to the page it was opened on
  page = new Page();
  const current = page;
  const { parts, params } = parse();
  const [first, ...rest] = parts;
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', (a.dataset.nav === 'overview' && ['node', 'ns', 'pod', 'container', undefined].includes(first))
      || (a.dataset.nav === 'dashboards' && ['dashboards', 'd', 'new'].includes(first)) || a.dataset.nav === first);
  }
  document.body.dataset.route = first || 'overview';
  delete document.body.dataset.ready;
  if (first === 'login') { loginPage(main, params); return; }
  try {
    if (!who) {
      const me = await whoami();
      if (me.auth && !me.user) { // the server needs a login and we have none
        location.hash = `#/login?next=${encodeURIComponent(location.hash || '#/')}`;
        return;
      }
      who = me;
      drawWho();
    }
    if (first !== 'd') readUrl();
    main.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
    switch (first) {
      case undefined: case 'overview': await overviewPage(main, current); break;
      case 'node': await nodePage(main, current, rest[0]); break;
      case 'ns': await namespacePage(main, current, rest[0]); break;
      case 'pod': await podPage(main, current, rest[0], rest[1]); break;
      case 'container': await containerPage(main, current, params); break;
      case 'dashboards': await dashboardsPage(main, current, who); break;
      case 'd': await dashboardPage(main, current, who, rest[0], params); break;
      case 'new': await dashboardPage(main, current, who, null, params); break;
      case 'logs': await logsPage(main, current, params); break;
      case 'alerts': await alertsPage(main, current, who, rest, params); break;
      default: main.replaceChildren(el('p', { class: 'error' }, `No page ${location.hash}.`));
    }
    if (current === page) {
      document.body.dataset.readyAt = performance.now().toFixed(1);
      document.body.dataset.ready = 'true';
    }
  } catch (e) {
    if (e.name === 'AbortError' || current !== page) return;
    if (e.status === 401) return; // api() sent us to the login page
    main.replaceChildren(el('p', { class: 'error', id: 'page-error' }, e.message));
    document.body.dataset.ready = 'error';
  }
}

mountPicker(document.getElementById('timebar'));
window.addEventListener('hashchange', route);
timeState.on(() => {});
route();
