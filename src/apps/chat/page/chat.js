// The chat page: speaks the protocol of ../PROTOCOL.md over a reconnecting
// WebSocket. Everything from the server or the user reaches the page through
// textContent and attributes, never as HTML. Images travel as binary
// messages (PROTOCOL.md, "Images") and are shown from blob: URLs, revoked
// when their message leaves the page.
//
// Protocol 2 (PROTOCOL.md): the page keeps its position in the room and
// rejoins with it after a reconnect, to resume without loss or duplicate;
// messages typed meanwhile wait as pending and are marked delivered when
// the room's broadcast echoes their client id.
//
// The binary envelope and the limits come from the server's own modules
// (src/apps/chat/wire/, served compiled at /chat/wire/): the page checks a
// message's size, an image's size and a file name's length with the
// server's numbers, to spare a refused upload; the server still decides.
import { pageSocket, parseEnvelope, sendEnvelope, showState } from '/web/page-socket.js';
import { unwrap, wrap } from '/chat/wire/envelope.js';
import { IMAGE_MIMES } from '/chat/wire/image-type.js';
import {
  DEFAULT_ROOM,
  MAX_IMAGE_BYTES,
  MAX_IMAGE_NAME_LENGTH,
  MAX_MESSAGE_BYTES,
  MAX_SERVER_IMAGE_HEADER_BYTES,
  TYPING_INTERVAL_MS,
} from '/chat/wire/protocol.js';

/** The types the server accepts (it tells them from the bytes); only these are turned into images here. */
const IMAGE_TYPES = new Set(IMAGE_MIMES);
/** How often an upload's progress bar is updated, ms. */
const PROGRESS_EVERY_MS = 100;
/** How long an error stays in the room view. */
const ERROR_SHOW_MS = 6000;
/** Messages kept on screen; older ones are removed so a long session stays light. */
const MAX_SHOWN = 500;
/** The server lets a member's `typing` through once per TYPING_INTERVAL_MS; sent a little less often than that. */
const TYPING_EVERY_MS = TYPING_INTERVAL_MS + 500;
/** How long "… is typing" stays after someone's last indicator. */
const TYPING_SHOWN_MS = 4000;
/** Pending messages sent after a rejoin: spaced to stay under the server's 5 messages a second. */
const RESEND_SPACING_MS = 250;
/** A message the server could not store (`unavailable`) is tried again after this long. */
const RETRY_UNAVAILABLE_MS = 2000;

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
  imageButton: $('image-button'),
  imageInput: $('image-input'),
  leave: $('leave'),
  chatError: $('chat-error'),
  typing: $('typing'),
};

/** Where the user wants to be ({nick, room}), kept across reconnects; null on the join form. */
let membership = null;
/** Whether the server confirmed the membership on the current connection. */
let inRoom = false;
/** The room whose messages are on screen, and their ids (history after a reconnect repeats some). */
let shownRoom = null;
let shownIds = new Set();
let errorTimer = null;
/** Images being sent, by their client id: { item, progress, status }. */
const uploads = new Map();
/** Images listed by `history` whose bytes have not arrived yet, by id: their list items. */
const awaitingBytes = new Map();
/** Client ids: random per page, so two pages never match each other's uploads. */
const uploadPrefix = Math.random().toString(36).slice(2, 8);
let uploadCounter = 0;
/**
 * This page load's session token, sent with every join: a nickname still
 * held by this page's previous connection (its server died) is given back.
 */
const session = `${uploadPrefix}${Math.random().toString(36).slice(2, 10)}`;
/** The last position received per room ({epoch, offset}): where a rejoin resumes. */
const positions = new Map();
/** Messages typed and not yet echoed by the room, in the order typed, by client id: { id, text, item }. */
const pending = new Map();
let messageCounter = 0;
/** Messages shown, by sender and client id (a resend never shows twice). */
let shownClientIds = new Set();
/** Whether the current join's catch-up (history or resumption) is done: pending messages may go. */
let synced = false;
let resendTimer = null;
/** Messages from others that arrived while the tab was hidden: shown in the title. */
let unread = 0;
/** Who is typing, by nickname: the timer that forgets them. */
const typers = new Map();
let lastTypingSent = -Infinity;

const encoder = new TextEncoder();
const socket = pageSocket('/chat/ws', {
  backoff: { initialDelay: 250, factor: 2, maxDelay: 5000 },
  // Images arrive as bytes to slice, not as Blobs.
  binaryType: 'arraybuffer',
  // A silent connection (a sleeping laptop, a dead NAT entry) is noticed and replaced.
  heartbeat: { interval: 25_000, timeout: 10_000, message: '{"type":"ping"}', reply: '{"type":"pong"}' },
});

// ---- connection ---------------------------------------------------------------

showState(socket, ui.status, { closing: 'disconnecting…' });

socket.on('statechange', ({ state }) => {
  ui.reconnect.hidden = state !== 'closed';
  ui.joinButton.disabled = state === 'closed';
});

socket.on('open', ({ reconnected }) => {
  // Sent before anything queued while offline, so queued messages go to the room.
  if (membership !== null) {
    if (reconnected) addSystem(`Reconnected; rejoining #${membership.room} as ${membership.nick}…`);
    joinRoom(membership.nick, membership.room);
  }
});

socket.on('close', ({ code, reason, willReconnect }) => {
  const wasInRoom = inRoom;
  inRoom = false;
  synced = false;
  clearTimeout(resendTimer);
  clearTypers();
  if (uploads.size > 0) {
    for (const id of [...uploads.keys()]) dropUpload(id);
    showError('The connection was lost before the server confirmed an image; send it again.', { code: 'offline' });
  }
  if (willReconnect) {
    if (wasInRoom) addSystem('Connection lost; reconnecting…');
    return;
  }
  const why =
    reason ? `: ${reason}`
    : code === 1008 ? ': policy violation'
    : '';
  showError(`Disconnected by the server${why} (${code}).`, { sticky: true });
});

ui.reconnect.addEventListener('click', () => {
  clearError();
  socket.open();
});

socket.on('message', ({ data }) => {
  if (data instanceof ArrayBuffer) {
    receiveImage(data);
    return;
  }
  const message = parseEnvelope(data);
  const handler = message === null ? undefined : HANDLERS[message.type];
  if (handler === undefined) return;
  handler(message);
  notePosition(message);
});

function send(message) {
  sendEnvelope(socket, message);
}

/**
 * Join (or rejoin) a room. Rejoining the room still on screen (after a
 * reconnect) resumes from the last position received, so that what is
 * shown is continued without a hole; any other join starts with the history.
 */
function joinRoom(nick, room) {
  const since = room === shownRoom ? positions.get(room) : undefined;
  send({ type: 'join', nick, room, session, ...(since === undefined ? {} : { since }) });
}

/** Room messages, `history` and `resumed` carry a position: the latest is where a rejoin resumes. */
function notePosition(message) {
  if (typeof message.epoch !== 'string' || typeof message.offset !== 'number' || typeof message.room !== 'string') return;
  positions.set(message.room, { epoch: message.epoch, offset: message.offset });
}

// ---- what the server says -------------------------------------------------------

const HANDLERS = {
  joined(message) {
    membership = { nick: message.nick, room: message.room };
    inRoom = true;
    // Pending messages wait for the history or the resumption that follows.
    synced = false;
    remember(membership);
    if (shownRoom !== message.room) {
      clearMessages();
      shownRoom = message.room;
    }
    ui.roomTitle.textContent = `#${message.room}`;
    updateTitle();
    ui.joinError.textContent = '';
    showRoomView(true);
    addSystem(`You are ${message.nick} in #${message.room}.`);
  },
  history(message) {
    if (message.missed === true) {
      // Asked to resume and could not be: what was sent meanwhile may not all be here.
      addSystem('Some messages may be missing: the server could not replay everything sent while you were away.', Date.now(), 'missed');
    }
    for (const entry of message.messages) {
      if (typeof entry.mime !== 'string') {
        addMessage(entry);
        continue;
      }
      // An image: its bytes follow in a binary message.
      const item = addImageEntry(entry);
      if (item !== null) awaitingBytes.set(entry.id, item);
    }
    caughtUp();
  },
  resumed(message) {
    if (message.replayed > 0) addSystem(`Back: ${message.replayed} message${message.replayed === 1 ? '' : 's'} sent while you were away, above.`);
    caughtUp();
  },
  message(message) {
    addMessage(message);
    forgetTyper(message.nick);
  },
  typing(message) {
    if (message.room !== shownRoom || (membership !== null && message.nick === membership.nick)) return;
    clearTimeout(typers.get(message.nick));
    typers.set(
      message.nick,
      setTimeout(() => forgetTyper(message.nick), TYPING_SHOWN_MS),
    );
    showTypers();
  },
  duplicate(message) {
    // Posted before (the first try got through): its echo is in the room's sequence.
    const entry = pending.get(message.id);
    if (entry !== undefined) markDelivered(entry, null);
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
    synced = false;
    pending.clear();
    showRoomView(false);
  },
  error(message) {
    if (message.request === 'image' && typeof message.id === 'string') dropUpload(message.id);
    if (message.request === 'message' && typeof message.id === 'string' && pending.has(message.id)) {
      const entry = pending.get(message.id);
      if (message.code === 'unavailable') {
        // The server could not reach its store: the message may or may not be posted; the same id makes a retry safe.
        setTimeout(() => sendPending(entry), RETRY_UNAVAILABLE_MS);
      } else {
        // Refused (too fast, too long...): it will not be posted; the error says why.
        pending.delete(entry.id);
        entry.item.remove();
      }
    }
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
  const room = ui.room.value.trim() || DEFAULT_ROOM;
  ui.joinError.textContent = '';
  if (nick === '') {
    ui.joinError.textContent = 'Pick a nickname.';
    return;
  }
  joinRoom(nick, room);
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

// Others see that someone is typing (the server passes one indicator per 2 s through).
ui.text.addEventListener('input', () => {
  if (!inRoom || socket.state !== 'open' || ui.text.value.trim() === '') return;
  const now = performance.now();
  if (now - lastTypingSent < TYPING_EVERY_MS) return;
  lastTypingSent = now;
  send({ type: 'typing' });
});

document.addEventListener('visibilitychange', () => {
  if (document.hidden) return;
  unread = 0;
  updateTitle();
});

ui.leave.addEventListener('click', () => {
  if (inRoom) send({ type: 'leave' });
  else {
    membership = null;
    showRoomView(false);
  }
});

ui.imageButton.addEventListener('click', () => ui.imageInput.click());

ui.imageInput.addEventListener('change', () => {
  const files = [...ui.imageInput.files];
  // Cleared, so that choosing the same file again sends it again.
  ui.imageInput.value = '';
  sendImages(files);
});

// Files dropped anywhere on the room, or pasted into the message box.
ui.roomView.addEventListener('dragover', (event) => {
  if (!event.dataTransfer?.types.includes('Files')) return;
  event.preventDefault();
  ui.roomView.classList.add('dropping');
});
ui.roomView.addEventListener('dragleave', (event) => {
  if (!ui.roomView.contains(event.relatedTarget)) ui.roomView.classList.remove('dropping');
});
ui.roomView.addEventListener('drop', (event) => {
  ui.roomView.classList.remove('dropping');
  const files = [...(event.dataTransfer?.files ?? [])];
  if (files.length === 0) return;
  event.preventDefault();
  sendImages(files);
});
ui.text.addEventListener('paste', (event) => {
  const files = [...(event.clipboardData?.files ?? [])];
  if (files.length === 0) return;
  event.preventDefault();
  sendImages(files);
});

async function sendImages(files) {
  for (const file of files) await sendImage(file);
}

/**
 * Send one file as an image. Only the size is checked here; whether it is
 * an image at all is the server's call, from its bytes, and its error shows.
 */
async function sendImage(file) {
  if (!inRoom) {
    showError('Join a room before sending images.', { code: 'not_joined' });
    return;
  }
  if (file.size > MAX_IMAGE_BYTES) {
    showError(`An image may have at most ${MAX_IMAGE_BYTES / (1024 * 1024)} MB; ${file.name} has ${describeSize(file.size)}.`, { code: 'too_large' });
    return;
  }
  if (socket.state !== 'open') {
    // Not queued while offline: megabytes do not belong in the reconnect queue.
    showError('Not connected: the image was not sent.', { code: 'offline' });
    return;
  }
  const id = `${uploadPrefix}-${++uploadCounter}`;
  const name = [...file.name].slice(0, MAX_IMAGE_NAME_LENGTH).join('');
  const upload = addUpload(id, file, name);
  let bytes;
  try {
    bytes = await file.arrayBuffer();
  } catch {
    dropUpload(id);
    showError(`${name} could not be read.`, { code: 'unreadable' });
    return;
  }
  if (!uploads.has(id)) return;
  const message = wrap({ type: 'image', id, name }, new Uint8Array(bytes));
  if (socket.state !== 'open' || !socket.send(message)) {
    dropUpload(id);
    showError('Not connected: the image was not sent.', { code: 'offline' });
    return;
  }
  followProgress(id, upload, message.byteLength);
}

/**
 * The progress bar follows the socket's bufferedAmount down to zero; the
 * server's broadcast of the image (or its error) then replaces the upload.
 */
function followProgress(id, upload, total) {
  const step = () => {
    if (uploads.get(id) !== upload) return;
    const left = Math.min(socket.bufferedAmount, total);
    upload.progress.value = (total - left) / total;
    if (left > 0) {
      setTimeout(step, PROGRESS_EVERY_MS);
      return;
    }
    upload.status.textContent = 'sent, waiting for the server…';
  };
  step();
}

/**
 * A typed message becomes pending: shown at once, marked as not yet
 * delivered, and sent now if the page is in its room, else once it has
 * rejoined. Its client id makes the room's echo recognisable and a resend
 * harmless (PROTOCOL.md, "Pending and delivered").
 */
function sendText() {
  const text = ui.text.value;
  if (text.trim() === '') return;
  if (membership === null) return;
  const id = `${uploadPrefix}-m${++messageCounter}`;
  if (encoder.encode(JSON.stringify({ type: 'message', text, id })).length > MAX_MESSAGE_BYTES) {
    showError(`A message may have at most ${MAX_MESSAGE_BYTES / 1024} KB; this one is too long.`, { code: 'too_large' });
    return;
  }
  const entry = { id, text, item: addPendingMessage(id, text) };
  pending.set(id, entry);
  ui.text.value = '';
  lastTypingSent = -Infinity;
  if (synced) sendPending(entry);
}

/** Send a pending message unless it was delivered meanwhile; only on an open connection (never into the offline queue). */
function sendPending(entry) {
  if (!pending.has(entry.id) || !synced || socket.state !== 'open') return;
  send({ type: 'message', text: entry.text, id: entry.id });
  entry.item.querySelector('.status-line').textContent = 'sending…';
}

/** The join's catch-up is over (its history or its resumption came): send what is still pending, in order. */
function caughtUp() {
  synced = true;
  const waiting = [...pending.values()];
  clearTimeout(resendTimer);
  const next = (index) => {
    if (index >= waiting.length || !synced) return;
    sendPending(waiting[index]);
    // The first few at once (the rate's burst), then spaced.
    resendTimer = setTimeout(() => next(index + 1), index < 3 ? 0 : RESEND_SPACING_MS);
  };
  next(0);
}

function addPendingMessage(id, text) {
  const item = document.createElement('li');
  item.className = 'message own pending';
  item.dataset.clientId = id;
  const nick = document.createElement('span');
  nick.className = 'nick';
  nick.textContent = membership?.nick ?? '';
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  const status = document.createElement('span');
  status.className = 'status-line';
  status.textContent = synced ? 'sending…' : 'pending: will be sent when reconnected';
  item.append(timeElement(Date.now()), nick, body, status);
  append(item);
  return item;
}

/** The room echoed a pending message (`message`), or said it was posted already (null): it is delivered. */
function markDelivered(entry, message) {
  pending.delete(entry.id);
  const item = entry.item;
  item.classList.remove('pending');
  item.classList.add('delivered');
  item.querySelector('.status-line')?.remove();
  if (membership !== null) shownClientIds.add(`${membership.nick}\n${entry.id}`);
  if (message === null) return;
  item.dataset.id = message.id;
  shownIds.add(message.id);
  item.querySelector('time')?.replaceWith(timeElement(message.time));
}

function forgetTyper(nick) {
  if (!typers.has(nick)) return;
  clearTimeout(typers.get(nick));
  typers.delete(nick);
  showTypers();
}

function clearTypers() {
  for (const timer of typers.values()) clearTimeout(timer);
  typers.clear();
  showTypers();
}

function showTypers() {
  const names = [...typers.keys()];
  ui.typing.textContent =
    names.length === 0 ? ''
    : names.length === 1 ? `${names[0]} is typing…`
    : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
    : 'Several people are typing…';
}

/** The room in the title, and while the tab is hidden the number of messages that came meanwhile. */
function updateTitle() {
  const base = shownRoom === null ? 'Chat · Sockeye' : `#${shownRoom} · Chat · Sockeye`;
  document.title = unread > 0 ? `(${unread}) ${base}` : base;
}

/** A message from someone else reached the screen: counted while the tab is hidden. */
function noteArrival(nick) {
  if (!document.hidden || (membership !== null && nick === membership.nick)) return;
  unread++;
  updateTitle();
}

// ---- the page -----------------------------------------------------------------

function showRoomView(show) {
  ui.roomView.hidden = !show;
  ui.joinForm.hidden = show;
  if (show) {
    ui.text.focus();
  } else {
    ui.roomTitle.textContent = '';
    ui.presence.replaceChildren();
    ui.count.textContent = '0';
    shownRoom = null;
    unread = 0;
    updateTitle();
    clearTypers();
    if (membership === null && ui.nick.value === '') prefill();
  }
}

function addMessage(message) {
  if (message.room !== shownRoom || shownIds.has(message.id)) return;
  shownIds.add(message.id);
  const byClientId = typeof message.clientId === 'string' ? `${message.nick}\n${message.clientId}` : null;
  // Shown already under its client id (a resend that was posted twice, past the server's memory of ids).
  if (byClientId !== null && shownClientIds.has(byClientId)) return;
  const own = membership !== null && message.nick === membership.nick;
  const entry = own && typeof message.clientId === 'string' ? pending.get(message.clientId) : undefined;
  if (entry !== undefined) {
    markDelivered(entry, message);
    return;
  }
  if (byClientId !== null) shownClientIds.add(byClientId);
  noteArrival(message.nick);
  const item = document.createElement('li');
  item.className = 'message';
  item.dataset.id = message.id;
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

/** A list item for an image: sender, time, and a figure whose picture comes later (`showImage`). Null if already shown. */
function addImageEntry(entry, { replacing = null } = {}) {
  if (entry.room !== shownRoom || shownIds.has(entry.id)) return null;
  shownIds.add(entry.id);
  const item = document.createElement('li');
  item.className = 'message image';
  item.dataset.id = entry.id;
  if (membership !== null && entry.nick === membership.nick) item.classList.add('own');
  const nick = document.createElement('span');
  nick.className = 'nick';
  nick.textContent = entry.nick;
  const body = document.createElement('div');
  body.className = 'text';
  const figure = document.createElement('figure');
  const placeholder = document.createElement('div');
  placeholder.className = 'placeholder';
  placeholder.textContent = 'loading image…';
  const caption = document.createElement('figcaption');
  caption.textContent = `${entry.name} · ${describeSize(entry.size)}`;
  noteArrival(entry.nick);
  figure.append(placeholder, caption);
  body.append(figure);
  item.append(timeElement(entry.time), nick, body);
  if (replacing !== null && replacing.isConnected) {
    releaseItem(replacing);
    replacing.replaceWith(item);
  } else {
    append(item);
  }
  return item;
}

/** A binary message from the server: an image for the room, live or from the history. */
function receiveImage(buffer) {
  const envelope = unwrap(new Uint8Array(buffer), MAX_SERVER_IMAGE_HEADER_BYTES);
  if (!envelope.ok || envelope.header.type !== 'image') return;
  const { header, payload: bytes } = envelope;
  notePosition(header);
  if (!IMAGE_TYPES.has(header.mime)) return;
  let item = awaitingBytes.get(header.id);
  awaitingBytes.delete(header.id);
  if (item === undefined) {
    // Our own upload comes back: it takes the place of its preview.
    const own =
      typeof header.clientId === 'string' && membership !== null && header.nick === membership.nick ? uploads.get(header.clientId) : undefined;
    item = addImageEntry(header, { replacing: own?.item ?? null });
    if (own !== undefined) dropUpload(header.clientId);
    // Already on screen (a history repeated after a reconnect), or another room's.
    if (item === null) return;
  }
  showImage(item, header, bytes);
}

function showImage(item, header, bytes) {
  const placeholder = item.querySelector('.placeholder');
  if (placeholder === null) return;
  const list = ui.messages;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const image = document.createElement('img');
  image.src = URL.createObjectURL(new Blob([bytes], { type: header.mime }));
  image.alt = header.name;
  image.title = header.name;
  image.decoding = 'async';
  // Its height is known only once it has loaded: keep the newest line in view.
  image.addEventListener('load', () => {
    if (atBottom) list.scrollTop = list.scrollHeight;
  });
  image.addEventListener('error', () => {
    image.replaceWith(Object.assign(document.createElement('div'), { className: 'placeholder', textContent: 'this image cannot be shown' }));
    URL.revokeObjectURL(image.src);
  });
  placeholder.replaceWith(image);
}

/** The preview of an image being sent: the local file itself, a progress bar, and a status line. */
function addUpload(id, file, name) {
  const item = document.createElement('li');
  item.className = 'message image own pending';
  item.dataset.upload = id;
  const nick = document.createElement('span');
  nick.className = 'nick';
  nick.textContent = membership?.nick ?? '';
  const body = document.createElement('div');
  body.className = 'text';
  const figure = document.createElement('figure');
  // Previewed only if the browser takes it for an image; the server decides what it is.
  const url = file.type.startsWith('image/') ? URL.createObjectURL(file) : null;
  if (url !== null) {
    const preview = document.createElement('img');
    preview.src = url;
    preview.alt = name;
    preview.className = 'preview';
    preview.addEventListener('error', () => {
      URL.revokeObjectURL(url);
      preview.remove();
    });
    figure.append(preview);
  }
  const caption = document.createElement('figcaption');
  const status = document.createElement('span');
  status.className = 'status-line';
  status.textContent = 'sending…';
  const progress = document.createElement('progress');
  progress.max = 1;
  progress.value = 0;
  caption.append(`${name} · ${describeSize(file.size)} · `, status);
  figure.append(progress, caption);
  body.append(figure);
  item.append(timeElement(Date.now()), nick, body);
  append(item);
  const upload = { item, progress, status };
  uploads.set(id, upload);
  return upload;
}

/** Forget an upload that failed (or whose connection went): its preview leaves the list. */
function dropUpload(id) {
  const upload = uploads.get(id);
  if (upload === undefined) return;
  uploads.delete(id);
  releaseItem(upload.item);
  upload.item.remove();
}

/** Free what a list item holds: the blob: URLs of its images, its place among the awaited and the uploads. */
function releaseItem(item) {
  for (const image of item.querySelectorAll('img')) {
    if (image.src.startsWith('blob:')) URL.revokeObjectURL(image.src);
  }
  if (item.dataset.id) awaitingBytes.delete(item.dataset.id);
  if (item.dataset.upload) uploads.delete(item.dataset.upload);
}

function clearMessages() {
  for (const item of ui.messages.children) releaseItem(item);
  ui.messages.replaceChildren();
  shownIds = new Set();
  shownClientIds = new Set();
  // Pending messages belong to the room they were typed in.
  pending.clear();
}

/** 1536 -> "1.5 KB", as the server counts (1 KB = 1024 bytes). */
function describeSize(bytes) {
  if (bytes >= 1024 * 1024) return `${Number((bytes / (1024 * 1024)).toFixed(1))} MB`;
  if (bytes >= 1024) return `${Number((bytes / 1024).toFixed(1))} KB`;
  return `${bytes} bytes`;
}

function addSystem(text, time = Date.now(), kind = '') {
  const item = document.createElement('li');
  item.className = kind === '' ? 'system' : `system ${kind}`;
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
    releaseItem(first);
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
