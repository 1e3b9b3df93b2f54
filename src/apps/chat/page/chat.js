// The chat page: speaks the protocol of ../PROTOCOL.md over a reconnecting
// WebSocket. Everything from the server or the user reaches the page through
// textContent and attributes, never as HTML.
import { ReconnectingWebSocket } from '/web/reconnecting-websocket.js';

/** The server's limit on one message, in UTF-8 bytes of its JSON. */
const MAX_MESSAGE_BYTES = 10 * 1024;
/** How long an error stays in the room view. */
const ERROR_SHOW_MS = 6000;
/** Messages kept on screen; older ones are removed so a long session stays light. */
const MAX_SHOWN = 500;

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'),
  reconnect: $('reconnect'),
  roomTitle: $('room-title'),
  joinForm: $('join'),
  nick: $('nick'),
  room: $('room'),
  joinButton: $('join-button'),
  joinError: $('join-error'),
  roomView: $('room-view'),
  messages: $('messages'),
  presence: $('presence'),
  count: $('count'),
  composer: $('composer'),
  text: $('text'),
  leave: $('leave'),
  chatError: $('chat-error'),
};

/** Where the user wants to be ({nick, room}), kept across reconnects; null on the join form. */
let membership = null;
/** Whether the server confirmed the membership on the current connection. */
let inRoom = false;
/** The room whose messages are on screen, and their ids (history after a reconnect repeats some). */
let shownRoom = null;
let shownIds = new Set();
let errorTimer = null;

const encoder = new TextEncoder();
const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const socket = new ReconnectingWebSocket(`${scheme}://${location.host}/chat/ws`, {
  backoff: { initialDelay: 250, factor: 2, maxDelay: 5000 },
  // A silent connection (a sleeping laptop, a dead NAT entry) is noticed and replaced.
  heartbeat: { interval: 25_000, timeout: 10_000, message: '{"type":"ping"}', reply: '{"type":"pong"}' },
});

// ---- connection ---------------------------------------------------------------

const STATUS_TEXT = {
  connecting: 'connecting…',
  open: 'connected',
  reconnecting: 'reconnecting…',
  closing: 'disconnecting…',
  closed: 'disconnected',
};

socket.on('statechange', ({ state }) => {
  ui.status.dataset.state = state;
  ui.status.textContent = STATUS_TEXT[state] ?? state;
  ui.reconnect.hidden = state !== 'closed';
  ui.joinButton.disabled = state === 'closed';
});

socket.on('open', ({ reconnected }) => {
  // Sent before anything queued while offline, so queued messages go to the room.
  if (membership !== null) {
    if (reconnected) addSystem(`Reconnected; rejoining #${membership.room} as ${membership.nick}…`);
    send({ type: 'join', nick: membership.nick, room: membership.room });
  }
});

socket.on('close', ({ code, reason, willReconnect }) => {
  const wasInRoom = inRoom;
  inRoom = false;
  if (willReconnect) {
    if (wasInRoom) addSystem('Connection lost; reconnecting…');
    return;
  }
  const why = reason ? `: ${reason}` : code === 1008 ? ': policy violation' : '';
  showError(`Disconnected by the server${why} (${code}).`, { sticky: true });
});

ui.reconnect.addEventListener('click', () => {
  clearError();
  socket.open();
});

socket.on('message', ({ data }) => {
  if (typeof data !== 'string') return;
  let message;
  try {
    message = JSON.parse(data);
  } catch {
    return;
  }
  const handler = HANDLERS[message?.type];
  if (handler !== undefined) handler(message);
});

function send(message) {
  socket.send(JSON.stringify(message));
}

// ---- what the server says -------------------------------------------------------

const HANDLERS = {
  joined(message) {
    membership = { nick: message.nick, room: message.room };
    inRoom = true;
    remember(membership);
    if (shownRoom !== message.room) {
      ui.messages.replaceChildren();
      shownIds = new Set();
      shownRoom = message.room;
    }
    ui.roomTitle.textContent = `#${message.room}`;
    document.title = `#${message.room} · Chat · Sockeye`;
    ui.joinError.textContent = '';
    showRoomView(true);
    addSystem(`You are ${message.nick} in #${message.room}.`);
  },
  history(message) {
    for (const entry of message.messages) addMessage(entry);
  },
  message(message) {
    addMessage(message);
  },
  notice(message) {
    if (message.room !== shownRoom) return;
    addSystem(message.event === 'join' ? `${message.nick} joined` : `${message.nick} left`, message.time);
  },
  presence(message) {
    if (message.room !== shownRoom) return;
    const items = message.nicks.map((nick) => {
      const item = document.createElement('li');
      item.textContent = nick;
      if (membership !== null && nick === membership.nick) {
        item.classList.add('own');
        item.title = 'you';
      }
      return item;
    });
    ui.presence.replaceChildren(...items);
    ui.count.textContent = String(message.nicks.length);
  },
  left() {
    membership = null;
    inRoom = false;
    showRoomView(false);
  },
  error(message) {
    if (message.request === 'join' && !inRoom) {
      // A refused join, or a refused rejoin after a reconnect (the nickname
      // was taken meanwhile): back to the form, which says why.
      membership = null;
      showRoomView(false);
      ui.joinError.textContent = message.message;
      ui.joinError.dataset.code = message.code;
      ui.nick.focus();
      return;
    }
    showError(message.message, { code: message.code });
  },
};

// ---- what the user does ---------------------------------------------------------

ui.joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const nick = ui.nick.value.trim();
  const room = ui.room.value.trim() || 'general';
  ui.joinError.textContent = '';
  if (nick === '') {
    ui.joinError.textContent = 'Pick a nickname.';
    return;
  }
  send({ type: 'join', nick, room });
});

ui.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  sendText();
});

// Enter sends, Shift+Enter adds a line; not while an input method is composing a character.
ui.text.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    sendText();
  }
});

ui.leave.addEventListener('click', () => {
  if (inRoom) send({ type: 'leave' });
  else {
    membership = null;
    showRoomView(false);
  }
});

function sendText() {
  const text = ui.text.value;
  if (text.trim() === '') return;
  const message = JSON.stringify({ type: 'message', text });
  if (encoder.encode(message).length > MAX_MESSAGE_BYTES) {
    showError(`A message may have at most ${MAX_MESSAGE_BYTES / 1024} KB; this one is too long.`, { code: 'too_large' });
    return;
  }
  if (!socket.send(message)) {
    showError('Not connected: the message was not sent.', { code: 'offline' });
    return;
  }
  ui.text.value = '';
}

// ---- the page -----------------------------------------------------------------

function showRoomView(show) {
  ui.roomView.hidden = !show;
  ui.joinForm.hidden = show;
  if (show) {
    ui.text.focus();
  } else {
    ui.roomTitle.textContent = '';
    document.title = 'Chat · Sockeye';
    ui.presence.replaceChildren();
    ui.count.textContent = '0';
    shownRoom = null;
    if (membership === null && ui.nick.value === '') prefill();
  }
}

function addMessage(message) {
  if (message.room !== shownRoom || shownIds.has(message.id)) return;
  shownIds.add(message.id);
  const item = document.createElement('li');
  item.className = 'message';
  item.dataset.id = message.id;
  const own = membership !== null && message.nick === membership.nick;
  if (own) item.classList.add('own');
  const nick = document.createElement('span');
  nick.className = 'nick';
  nick.textContent = message.nick;
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = message.text;
  item.append(timeElement(message.time), nick, text);
  append(item);
}

function addSystem(text, time = Date.now()) {
  const item = document.createElement('li');
  item.className = 'system';
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  item.append(timeElement(time), body);
  append(item);
}

function timeElement(ms) {
  const date = new Date(ms);
  const element = document.createElement('time');
  element.dateTime = date.toISOString();
  element.textContent = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  element.title = date.toLocaleString();
  return element;
}

/** Append and keep the newest line in view, unless the user scrolled up to read. */
function append(item) {
  const list = ui.messages;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(item);
  while (list.childElementCount > MAX_SHOWN) {
    const first = list.firstElementChild;
    if (first.dataset.id) shownIds.delete(first.dataset.id);
    first.remove();
  }
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function showError(text, { code = '', sticky = false } = {}) {
  ui.chatError.textContent = text;
  ui.chatError.dataset.code = code;
  // Also where the user is looking when no room is shown.
  if (ui.roomView.hidden) ui.joinError.textContent = text;
  clearTimeout(errorTimer);
  if (!sticky) errorTimer = setTimeout(clearError, ERROR_SHOW_MS);
}

function clearError() {
  ui.chatError.textContent = '';
  delete ui.chatError.dataset.code;
}

function remember({ nick, room }) {
  try {
    localStorage.setItem('sockeye.chat', JSON.stringify({ nick, room }));
  } catch {
    // Storage may be off (private mode): the form just starts empty.
  }
}

function prefill() {
  try {
    const saved = JSON.parse(localStorage.getItem('sockeye.chat') ?? 'null');
    if (typeof saved?.nick === 'string') ui.nick.value = saved.nick;
    if (typeof saved?.room === 'string') ui.room.value = saved.room;
  } catch {
    // Nothing saved, or not readable.
  }
}

prefill();
ui.nick.focus();
