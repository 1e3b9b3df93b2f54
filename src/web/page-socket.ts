/**
 * What every page does with its WebSocket: connect to a path on the server
 * that served the page (ws: or wss: to match), show the connection state,
 * and speak the JSON envelope (objects with a string `type`). Imports only
 * the reconnecting socket; runs in browsers.
 */
import { ReconnectingWebSocket, type ReconnectingWebSocketOptions, type ReconnectState } from './reconnecting-websocket.js';

/** The one thing read from the page's `location`. */
interface PageLocation {
  readonly protocol: string;
  readonly host: string;
}

/** The parts of a DOM element the state display writes. */
export interface StateView {
  textContent: string | null;
  readonly dataset: Record<string, string | undefined>;
}

/** A message of the JSON envelope. */
export interface Envelope {
  readonly type: string;
  readonly [field: string]: unknown;
}

export const STATE_LABELS: Readonly<Record<ReconnectState, string>> = {
  connecting: 'connecting…',
  open: 'connected',
  reconnecting: 'reconnecting…',
  closing: 'closing…',
  closed: 'disconnected',
};

/** `ws(s)://<this page's host><path>`. */
export function socketUrl(path: string, location: PageLocation = (globalThis as unknown as { location: PageLocation }).location): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

/** A reconnecting socket to `path` on the page's own server. */
export function pageSocket(path: string, options?: ReconnectingWebSocketOptions): ReconnectingWebSocket {
  return new ReconnectingWebSocket(socketUrl(path), options);
}

/**
 * Keep an element showing the socket's state: its text, and `data-state`
 * for the style sheet. `labels` overrides some of the words.
 */
export function showState(socket: ReconnectingWebSocket, view: StateView, labels: Partial<Record<ReconnectState, string>> = {}): void {
  const render = (state: ReconnectState): void => {
    view.dataset['state'] = state;
    view.textContent = labels[state] ?? STATE_LABELS[state];
  };
  render(socket.state);
  socket.on('statechange', ({ state }) => render(state));
}

/** Parse a text message of the envelope; null for anything else (not JSON, not an object, no string `type`). */
export function parseEnvelope(data: unknown): Envelope | null {
  if (typeof data !== 'string') return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  return typeof (value as { type?: unknown }).type === 'string' ? (value as Envelope) : null;
}

/** Send one envelope message; false when it could not be sent or queued (see ReconnectingWebSocket.send). */
export function sendEnvelope(socket: ReconnectingWebSocket, message: Envelope): boolean {
  return socket.send(JSON.stringify(message));
}
