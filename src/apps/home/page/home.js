// The home page: the list of applications, and whether the server can be reached.
import { pageSocket, showState } from '/web/page-socket.js';

const list = document.getElementById('apps');
const status = document.getElementById('status');

function appItem(app) {
  const item = document.createElement('li');
  item.dataset.app = app.name;
  const title = document.createElement(app.page ? 'a' : 'strong');
  title.className = 'title';
  if (app.page) title.href = app.page;
  title.textContent = app.title;
  const summary = document.createElement('span');
  summary.className = 'summary';
  summary.textContent = app.summary;
  const socket = document.createElement('code');
  socket.className = 'endpoint';
  socket.textContent = `WebSocket ${app.socket}`;
  item.append(title, summary, socket);
  return item;
}

async function showApps() {
  const response = await fetch('/api/apps', { cache: 'no-store' });
  if (!response.ok) throw new Error(`status ${response.status}`);
  const apps = await response.json();
  list.replaceChildren(...apps.map(appItem));
  list.removeAttribute('aria-busy');
}

function loadApps() {
  showApps().catch(() => {
    list.removeAttribute('aria-busy');
    if (list.children.length === 0) list.textContent = 'Could not load the list of applications.';
  });
}

// Reachability: the shell's own endpoint /ws answers "ping" with "pong". A
// live connection says the server is up; a shut-down server closes it at
// once, and the heartbeat notices a connection that died silently.
const socket = pageSocket('/ws', {
  backoff: { initialDelay: 500, maxDelay: 5000 },
  heartbeat: { interval: 10_000, timeout: 5000, message: 'ping', reply: 'pong' },
});

showState(socket, status, {
  connecting: 'checking the server…',
  open: 'server reachable',
  reconnecting: 'server unreachable, retrying…',
  closed: 'server unreachable',
});

// Back after an outage: the server may have restarted with other applications.
socket.on('open', ({ reconnected }) => {
  if (reconnected) loadApps();
});

loadApps();
