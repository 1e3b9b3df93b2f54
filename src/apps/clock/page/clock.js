// The clock page: Start sends `date`, Stop sends `stop` (see src/apps/clock/protocol.ts).
import { pageSocket, showState } from '/web/page-socket.js';

const timeView = document.getElementById('time');
const dateView = document.getElementById('date');
const statusView = document.getElementById('status');
const stateView = document.getElementById('state');
const errorView = document.getElementById('error');
const startButton = document.getElementById('start');
const stopButton = document.getElementById('stop');

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
const dateFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });

/** What the user asked for: it survives reconnects, and `date` is sent again after one. */
let wanted = false;
/** What the server confirmed with `started` on the current connection. */
let running = false;
/** The server's interval, from its `started` answer (shown only once it has come). */
let intervalMs = 0;

const socket = pageSocket('/clock/ws', { backoff: { initialDelay: 500, maxDelay: 5000 } });
showState(socket, statusView);

function render() {
  const online = socket.state === 'open';
  startButton.disabled = wanted;
  stopButton.disabled = !wanted;
  let state;
  let text;
  if (!wanted) {
    state = 'stopped';
    text = 'Stopped.';
  } else if (running) {
    state = 'ticking';
    text = `Ticking: a new time every ${intervalMs / 1000} s.`;
  } else {
    state = 'starting';
    text = online ? 'Starting…' : 'Waiting for the connection…';
  }
  stateView.dataset.state = state;
  stateView.textContent = text;
}

function showError(message) {
  errorView.hidden = message === '';
  errorView.textContent = message;
}

function showTime(epochMs, iso) {
  const date = new Date(epochMs);
  timeView.textContent = timeFormat.format(date);
  timeView.dateTime = iso;
  timeView.dataset.epochMs = String(epochMs);
  dateView.textContent = dateFormat.format(date);
}

socket.on('statechange', ({ state }) => {
  if (state !== 'open') running = false;
  render();
});

socket.on('open', () => {
  showError('');
  if (wanted) socket.send('date');
});

socket.on('message', ({ data }) => {
  let message;
  try {
    message = JSON.parse(String(data));
  } catch {
    showError('The server sent something that is not JSON.');
    return;
  }
  switch (message.type) {
    case 'started':
      intervalMs = message.intervalMs;
      running = wanted;
      break;
    case 'time':
      // A tick already on its way when Stop was pressed is not shown.
      if (wanted) showTime(message.epochMs, message.iso);
      break;
    case 'stopped':
      running = false;
      break;
    case 'error':
      showError(message.message);
      break;
  }
  render();
});

startButton.addEventListener('click', () => {
  wanted = true;
  showError('');
  if (socket.state === 'open') socket.send('date');
  render();
});

stopButton.addEventListener('click', () => {
  wanted = false;
  running = false;
  if (socket.state === 'open') socket.send('stop');
  render();
});

render();
