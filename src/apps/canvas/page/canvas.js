// The shared canvas page: speaks the binary protocol of ../PROTOCOL.md
// (version 2) over a reconnecting WebSocket. Pointers are DOM elements over a
// <canvas> that holds the drawing. Names reach the page through textContent,
// never as HTML.
import { pageSocket, showState } from '/web/page-socket.js';
import {
  COORDINATE_MAX,
  MAX_POINTS_PER_MESSAGE,
  MAX_STROKE_POINTS,
  PROTOCOL_VERSION,
  decodeServerMessage,
  encodeClientMessage,
} from '/canvas/wire/codec.js';

// ---- the protocol ---------------------------------------------------------------

/** At most one batch of updates (pointer and stroke) per this many ms: about 30 a second. */
const SEND_INTERVAL_MS = 33;
const ERROR_SHOW_MS = 6000;
/**
 * Least time between two undos sent: the server takes at most 10 a second
 * (in fixed one-second windows), so a held-down Ctrl+Z stays under it even
 * when the network bunches the messages up a little.
 */
const UNDO_INTERVAL_MS = 120;

/** A client message of ../PROTOCOL.md, encoded by the same codec the server uses. */
const encode = {
  hello: (name) => encodeClientMessage({ type: 'hello', version: PROTOCOL_VERSION, name }),
  rename: (name) => encodeClientMessage({ type: 'rename', name }),
  move: (x, y) => encodeClientMessage({ type: 'move', x, y }),
  strokeBegin: (colour, width, x, y) => encodeClientMessage({ type: 'stroke-begin', colour, width, x, y }),
  strokePoints: (points) => encodeClientMessage({ type: 'stroke-points', points }),
  strokeEnd: () => encodeClientMessage({ type: 'stroke-end' }),
  undo: () => encodeClientMessage({ type: 'undo' }),
  clear: () => encodeClientMessage({ type: 'clear' }),
};

/** Reads one server message; throws on anything the codec refuses (the server never sends that). */
function decode(buffer) {
  const decoded = decodeServerMessage(new Uint8Array(buffer));
  if (!decoded.ok) throw new Error(`${decoded.error.code}: ${decoded.error.message}`);
  const message = decoded.message;
  if (message.type === 'welcome' && message.version !== PROTOCOL_VERSION) throw new Error(`protocol version ${message.version}`);
  return message;
}

// ---- the page -------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'),
  reconnect: $('reconnect'),
  nameForm: $('name-form'),
  name: $('name'),
  me: $('me'),
  penColour: $('pen-colour'),
  penWidth: $('pen-width'),
  penWidthValue: $('pen-width-value'),
  undo: $('undo'),
  clear: $('clear'),
  clearConfirm: $('clear-confirm'),
  clearYes: $('clear-yes'),
  clearNo: $('clear-no'),
  error: $('error'),
  notice: $('notice'),
  board: $('board'),
  canvas: $('drawing'),
  pointers: $('pointers'),
  people: $('people'),
};
const context = ui.canvas.getContext('2d');

/** Who I am ({id, colour, name}), once welcomed. */
let me = null;
/** Everyone here, me included: id -> {id, colour, name, pointer, element}. */
const visitors = new Map();
/** The drawing as the server announced it, oldest first: id -> {id, visitor, colour, width, open, points}. */
const strokes = new Map();
/**
 * My own strokes, drawn at once, before the server's copy has come back
 * complete: {serverId (null until the server's stroke-begin), colour, width, points}.
 */
let localStrokes = [];
/** The stroke my pointer is drawing: {pointerId, local}, or null. */
let drawing = null;
/** The pen colour follows my visitor colour until the user picks one. */
let penChosen = false;
let errorTimer = null;
let noticeTimer = null;
let lastUndoAt = -Infinity;

// What goes out at the next send: stroke operations in order, and my latest position.
let outbox = [];
let pendingMove = null;
let lastPointer = null;
let lastSendAt = -Infinity;
let sendTimer = null;

const socket = pageSocket('/canvas/ws', {
  binaryType: 'arraybuffer',
  backoff: { initialDelay: 250, factor: 2, maxDelay: 5000 },
  // A silent connection (a sleeping laptop, a dead NAT entry) is noticed and replaced.
  heartbeat: { interval: 25_000, timeout: 10_000, message: 'ping', reply: 'pong' },
});

showState(socket, ui.status, { closing: 'disconnecting…' });

socket.on('statechange', ({ state }) => {
  ui.reconnect.hidden = state !== 'closed';
  showUndoState();
});

socket.on('open', () => {
  socket.send(encode.hello(savedName()));
  // What was drawn for the old connection is either in the coming snapshot or lost with it.
  localStrokes = [];
  outbox = [];
  if (drawing !== null) {
    // Still drawing across the reconnect: the server ended the old stroke, so go on with a new one.
    const { points } = drawing.local;
    startStroke(drawing.pointerId, { x: points[points.length - 2], y: points[points.length - 1] });
  }
  scheduleSend();
});

socket.on('close', ({ code, reason, willReconnect }) => {
  me = null;
  if (!willReconnect) showError(`Disconnected by the server${reason ? `: ${reason}` : ''} (${code}).`, { sticky: true });
});

ui.reconnect.addEventListener('click', () => {
  clearError();
  socket.open();
});

socket.on('message', ({ data }) => {
  if (typeof data === 'string') return;
  let incoming;
  try {
    incoming = decode(data);
  } catch (error) {
    console.warn('canvas: unreadable message', error);
    return;
  }
  HANDLERS[incoming.type](incoming);
});

// ---- what the server says ---------------------------------------------------------

const HANDLERS = {
  welcome({ id, colour, name }) {
    me = { id, colour, name };
    ui.me.style.background = hex(colour);
    ui.name.value = name;
    if (!penChosen) ui.penColour.value = hex(colour);
    showUndoState();
  },
  snapshot(snapshot) {
    for (const visitor of visitors.values()) visitor.element?.remove();
    visitors.clear();
    for (const info of snapshot.visitors) {
      const visitor = { ...info, pointer: null, element: null };
      visitors.set(visitor.id, visitor);
      if (info.pointer !== null) placePointer(visitor, info.pointer.x, info.pointer.y);
    }
    strokes.clear();
    for (const stroke of snapshot.strokes) strokes.set(stroke.id, stroke);
    // The server's copy of my strokes is authoritative from here on.
    localStrokes = localStrokes.filter((local) => local.serverId === null);
    showPeople();
    showUndoState();
    requestRender();
  },
  join(info) {
    visitors.set(info.id, { ...info, pointer: null, element: null });
    showPeople();
  },
  leave({ id }) {
    visitors.get(id)?.element?.remove();
    visitors.delete(id);
    showPeople();
  },
  renamed({ id, name }) {
    const visitor = visitors.get(id);
    if (visitor === undefined) return;
    visitor.name = name;
    if (visitor.element !== null) visitor.element.querySelector('.label').textContent = name;
    if (me !== null && id === me.id) {
      me.name = name;
      ui.name.value = name;
    }
    showPeople();
  },
  pointers({ pointers }) {
    for (const { id, x, y } of pointers) {
      const visitor = visitors.get(id);
      if (visitor !== undefined) placePointer(visitor, x, y);
    }
  },
  'stroke-begin'({ id, visitor, colour, width, x, y }) {
    strokes.set(id, { id, visitor, colour, width, open: true, points: [x, y] });
    if (me !== null && visitor === me.id) {
      const local = localStrokes.find((candidate) => candidate.serverId === null);
      if (local !== undefined) local.serverId = id;
      showUndoState();
    }
    requestRender();
  },
  'stroke-points'({ id, points }) {
    const stroke = strokes.get(id);
    if (stroke === undefined) return;
    for (const coordinate of points) stroke.points.push(coordinate);
    requestRender();
  },
  'stroke-end'({ id }) {
    const stroke = strokes.get(id);
    if (stroke !== undefined) stroke.open = false;
    localStrokes = localStrokes.filter((local) => local.serverId !== id);
    requestRender();
  },
  trim({ before }) {
    // Ids grow with age and the map keeps insertion order: the oldest come first.
    for (const id of strokes.keys()) {
      if (id >= before) break;
      strokes.delete(id);
    }
    localStrokes = localStrokes.filter((local) => local.serverId === null || local.serverId >= before);
    showUndoState();
    requestRender();
  },
  'stroke-undone'({ id }) {
    strokes.delete(id);
    localStrokes = localStrokes.filter((local) => local.serverId !== id);
    showUndoState();
    requestRender();
  },
  cleared({ by }) {
    strokes.clear();
    // A stroke of mine the server had begun is gone with the rest; one it has not seen yet begins after the clear.
    localStrokes = localStrokes.filter((local) => local.serverId === null);
    showUndoState();
    requestRender();
    const who = visitors.get(by);
    if (me === null || by !== me.id) showNotice(`${who === undefined ? 'Someone' : who.name} cleared the board.`);
  },
  error({ code, message: text }) {
    showError(text, { code });
  },
};

// ---- pointers and people ------------------------------------------------------------

function placePointer(visitor, x, y) {
  visitor.pointer = { x, y };
  // My own pointer is the mouse itself.
  if (me !== null && visitor.id === me.id) return;
  let element = visitor.element;
  if (element === null) {
    element = document.createElement('div');
    element.className = 'pointer';
    element.dataset.id = String(visitor.id);
    element.style.setProperty('--colour', hex(visitor.colour));
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = visitor.name;
    element.append(label);
    ui.pointers.append(element);
    visitor.element = element;
  }
  element.dataset.x = String(x);
  element.dataset.y = String(y);
  element.style.left = `${(x / COORDINATE_MAX) * 100}%`;
  element.style.top = `${(y / COORDINATE_MAX) * 100}%`;
}

function showPeople() {
  const items = [...visitors.values()].map((visitor) => {
    const item = document.createElement('li');
    item.dataset.id = String(visitor.id);
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = hex(visitor.colour);
    const name = document.createElement('span');
    name.textContent = visitor.name;
    item.append(swatch, name);
    if (me !== null && visitor.id === me.id) {
      item.classList.add('own');
      item.title = 'you';
    }
    return item;
  });
  ui.people.replaceChildren(...items);
}

// ---- what the user does ---------------------------------------------------------------

/** The event's position on the board, normalised to 0..65535 on each axis. */
function normalise(event) {
  const rect = ui.board.getBoundingClientRect();
  const clamp = (value) => Math.min(Math.max(value, 0), 1);
  return {
    x: Math.round(clamp((event.clientX - rect.left) / rect.width) * COORDINATE_MAX),
    y: Math.round(clamp((event.clientY - rect.top) / rect.height) * COORDINATE_MAX),
  };
}

ui.board.addEventListener('pointermove', (event) => {
  const point = normalise(event);
  lastPointer = point;
  pendingMove = point;
  if (drawing !== null && drawing.pointerId === event.pointerId) addPoint(point);
  scheduleSend();
});

ui.board.addEventListener('pointerdown', (event) => {
  // The main button of a mouse, a finger, or a pen tip; one stroke at a time.
  if (event.button !== 0 || drawing !== null) return;
  event.preventDefault();
  ui.board.setPointerCapture(event.pointerId);
  const point = normalise(event);
  lastPointer = point;
  pendingMove = point;
  startStroke(event.pointerId, point);
  scheduleSend();
});

for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) {
  ui.board.addEventListener(type, (event) => {
    if (drawing === null || drawing.pointerId !== event.pointerId) return;
    if (type === 'pointerup') addPoint(normalise(event));
    drawing = null;
    outbox.push({ type: 'end' });
    scheduleSend();
  });
}

function startStroke(pointerId, point) {
  const colour = parseInt(ui.penColour.value.slice(1), 16);
  const width = Number(ui.penWidth.value);
  const local = { serverId: null, colour, width, points: [point.x, point.y] };
  localStrokes.push(local);
  drawing = { pointerId, local };
  outbox.push({ type: 'begin', colour, width, x: point.x, y: point.y });
  requestRender();
}

function addPoint(point) {
  const { local } = drawing;
  const n = local.points.length;
  if (local.points[n - 2] === point.x && local.points[n - 1] === point.y) return;
  if (n / 2 >= MAX_STROKE_POINTS) {
    // The server's limit on one stroke: end it and go on with a new one from the same spot.
    outbox.push({ type: 'end' });
    startStroke(drawing.pointerId, { x: local.points[n - 2], y: local.points[n - 1] });
    addPoint(point);
    return;
  }
  local.points.push(point.x, point.y);
  const last = outbox[outbox.length - 1];
  if (last?.type === 'points') last.points.push(point.x, point.y);
  else outbox.push({ type: 'points', points: [point.x, point.y] });
  requestRender();
}

/** Send what piled up, at most once per SEND_INTERVAL_MS: the server forwards no more often anyway. */
function scheduleSend() {
  if (sendTimer !== null) return;
  const wait = Math.max(0, lastSendAt + SEND_INTERVAL_MS - performance.now());
  sendTimer = setTimeout(sendNow, wait);
}

/** Send what waits now rather than at the next interval: a message that must come after it follows. */
function sendPending() {
  if (sendTimer !== null) clearTimeout(sendTimer);
  sendNow();
}

function sendNow() {
  sendTimer = null;
  // Offline, nothing is queued: positions would be stale, and the stroke starts afresh on reconnecting.
  if (socket.state !== 'open') {
    outbox = [];
    pendingMove = null;
    return;
  }
  lastSendAt = performance.now();
  for (const operation of outbox) {
    if (operation.type === 'begin') {
      socket.send(encode.strokeBegin(operation.colour, operation.width, operation.x, operation.y));
    } else if (operation.type === 'points') {
      for (let i = 0; i < operation.points.length; i += MAX_POINTS_PER_MESSAGE * 2) {
        socket.send(encode.strokePoints(operation.points.slice(i, i + MAX_POINTS_PER_MESSAGE * 2)));
      }
    } else {
      socket.send(encode.strokeEnd());
    }
  }
  outbox = [];
  if (pendingMove !== null) {
    socket.send(encode.move(pendingMove.x, pendingMove.y));
    pendingMove = null;
  }
}

ui.nameForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = ui.name.value.trim();
  if (name === '' || (me !== null && name === me.name)) return;
  try {
    localStorage.setItem('sockeye.canvas.name', name);
  } catch {
    // Storage may be off (private mode): the name lasts for this visit.
  }
  if (socket.state === 'open') socket.send(encode.rename(name));
});

ui.penColour.addEventListener('input', () => {
  penChosen = true;
});

ui.penWidth.addEventListener('input', () => {
  ui.penWidthValue.value = ui.penWidth.value;
});

// ---- undo and clear -------------------------------------------------------------------

/** Undo is offered while connected and some stroke on the board is mine (the server decides which goes). */
function showUndoState() {
  const connected = socket.state === 'open' && me !== null;
  let mine = false;
  if (connected) {
    for (const stroke of strokes.values()) {
      if (stroke.visitor === me.id) {
        mine = true;
        break;
      }
    }
  }
  ui.undo.disabled = !mine;
  ui.clear.disabled = !connected;
  ui.clearYes.disabled = !connected;
  if (!connected) closeClearConfirm();
}

function undo() {
  // Not in the middle of a stroke: the one being drawn would vanish under the pen.
  if (ui.undo.disabled || drawing !== null) return;
  const now = performance.now();
  if (now - lastUndoAt < UNDO_INTERVAL_MS) return;
  lastUndoAt = now;
  // Whatever is still waiting (the end of the last stroke) goes first, so the undo applies to it.
  sendPending();
  socket.send(encode.undo());
}

ui.undo.addEventListener('click', undo);

document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && !ui.clearConfirm.hidden) {
    closeClearConfirm();
    return;
  }
  const typing = event.target instanceof HTMLElement && event.target.closest('input, textarea, [contenteditable]') !== null;
  if (typing || event.altKey || event.shiftKey || !(event.ctrlKey || event.metaKey) || event.key.toLowerCase() !== 'z') return;
  event.preventDefault();
  undo();
});

// Clearing is for everyone, so the button asks first, in place: no window.confirm() dialog.
ui.clear.addEventListener('click', () => {
  ui.clear.hidden = true;
  ui.clearConfirm.hidden = false;
  // The safe answer has the focus.
  ui.clearNo.focus();
});

ui.clearNo.addEventListener('click', closeClearConfirm);

ui.clearYes.addEventListener('click', () => {
  closeClearConfirm();
  if (socket.state !== 'open' || me === null) return;
  sendPending();
  socket.send(encode.clear());
});

function closeClearConfirm() {
  const focused = ui.clearConfirm.contains(document.activeElement);
  ui.clearConfirm.hidden = true;
  ui.clear.hidden = false;
  if (focused) ui.clear.focus();
}

function savedName() {
  try {
    return localStorage.getItem('sockeye.canvas.name') ?? '';
  } catch {
    return '';
  }
}

// ---- drawing on the canvas ---------------------------------------------------------------

let renderQueued = false;

function requestRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

/** Keep the canvas's pixels matched to its size on screen (and the screen's pixel density). */
new ResizeObserver(() => {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.round(ui.board.clientWidth * ratio);
  const height = Math.round(ui.board.clientHeight * ratio);
  if (ui.canvas.width !== width || ui.canvas.height !== height) {
    ui.canvas.width = width;
    ui.canvas.height = height;
    requestRender();
  }
}).observe(ui.board);

function render() {
  const { width, height } = ui.canvas;
  context.clearRect(0, 0, width, height);
  context.lineCap = 'round';
  context.lineJoin = 'round';
  for (const stroke of strokes.values()) paint(stroke, width, height);
  for (const local of localStrokes) paint(local, width, height);
}

function paint(stroke, width, height) {
  const { points } = stroke;
  const sx = width / COORDINATE_MAX;
  const sy = height / COORDINATE_MAX;
  // Widths are thousandths of the board's width, so a line looks the same on every screen.
  const lineWidth = Math.max(1, (stroke.width / 1000) * width);
  context.strokeStyle = hex(stroke.colour);
  context.fillStyle = hex(stroke.colour);
  if (points.length === 2) {
    context.beginPath();
    context.arc(points[0] * sx, points[1] * sy, lineWidth / 2, 0, Math.PI * 2);
    context.fill();
    return;
  }
  context.lineWidth = lineWidth;
  context.beginPath();
  context.moveTo(points[0] * sx, points[1] * sy);
  for (let i = 2; i < points.length; i += 2) context.lineTo(points[i] * sx, points[i + 1] * sy);
  context.stroke();
}

// ---- bits -----------------------------------------------------------------------------------

function hex(colour) {
  return `#${colour.toString(16).padStart(6, '0')}`;
}

function showError(text, { code = '', sticky = false } = {}) {
  ui.error.textContent = text;
  ui.error.dataset.code = code;
  clearTimeout(errorTimer);
  if (!sticky) errorTimer = setTimeout(clearError, ERROR_SHOW_MS);
}

function clearError() {
  ui.error.textContent = '';
  delete ui.error.dataset.code;
}

/** A passing note about what others did (not an error). */
function showNotice(text) {
  ui.notice.textContent = text;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    ui.notice.textContent = '';
  }, ERROR_SHOW_MS);
}

/**
 * A read-only view of what the page holds, for tests and the curious:
 * `sockeyeCanvas.pointers()` in the console shows everyone's position.
 */
window.sockeyeCanvas = {
  get me() {
    return me === null ? null : { ...me };
  },
  get connected() {
    return socket.state === 'open' && me !== null;
  },
  /** My latest position, normalised, as sent. */
  get lastPointer() {
    return lastPointer === null ? null : { ...lastPointer };
  },
  visitors: () => [...visitors.values()].map(({ id, colour, name, pointer }) => ({ id, colour, name, pointer: pointer && { ...pointer } })),
  strokes: () => [...strokes.values()].map((stroke) => ({ ...stroke, points: stroke.points.slice() })),
  /** My strokes not yet confirmed in full by the server. */
  pendingStrokes: () => localStrokes.length,
};
