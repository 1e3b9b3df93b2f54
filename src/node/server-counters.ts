import type { CloseInfo } from './connection.js';
import { ConnectionError } from './errors.js';

/**
 * What a server has done since it started, for metrics and alerts. Every
 * field only grows. Kept as plain integer increments at the moment each
 * thing happens (an open, a refusal, a close), never per message.
 */
export interface ServerCounters {
  /** Connections opened (101 sent). */
  opened: number;
  /** Upgrade requests refused, by HTTP status (400, 403, 404, 408, 429, 500, 503...). */
  refused: Record<number, number>;
  /** Connections closed, by the code their close event reported (1006 when no close frame arrived). */
  closed: Record<number, number>;
  /** Connections dropped by the heartbeat (no pong in time). */
  heartbeatDrops: number;
  /** Connections dropped because the peer read too slowly (backpressure policy `close`). */
  backpressureCloses: number;
  /** Messages not sent because the peer read too slowly (backpressure policy `drop`). */
  backpressureDrops: number;
  /** Received messages refused by a rate limit. */
  rateLimited: number;
  /** Connections closed (1008) for going over a rate limit: at once, or on sustained abuse. */
  rateLimitCloses: number;
  /** Hooks that threw or rejected. */
  hookFailures: number;
}

export function emptyCounters(): ServerCounters {
  return {
    opened: 0,
    refused: {},
    closed: {},
    heartbeatDrops: 0,
    backpressureCloses: 0,
    backpressureDrops: 0,
    rateLimited: 0,
    rateLimitCloses: 0,
    hookFailures: 0,
  };
}

export function countRefusal(counters: ServerCounters, status: number): void {
  counters.refused[status] = (counters.refused[status] ?? 0) + 1;
}

/** Count a closed connection: its close code, and why the server dropped it if it did. */
export function countClose(counters: ServerCounters, info: CloseInfo, droppedMessages: number): void {
  counters.closed[info.code] = (counters.closed[info.code] ?? 0) + 1;
  counters.backpressureDrops += droppedMessages;
  const error = info.error;
  if (error instanceof ConnectionError) {
    if (error.code === 'WS_ERR_HEARTBEAT_TIMEOUT') counters.heartbeatDrops++;
    else if (error.code === 'WS_ERR_BUFFER_LIMIT') counters.backpressureCloses++;
  }
}

/** A copy the caller may keep or change. */
export function copyCounters(counters: ServerCounters): ServerCounters {
  return { ...counters, refused: { ...counters.refused }, closed: { ...counters.closed } };
}
