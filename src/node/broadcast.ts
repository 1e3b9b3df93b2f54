import { prepareFrame } from '../protocol/protocol.js';
import type { Connection } from './connection.js';
import { toBytes, type SendData } from './send-data.js';

export interface BroadcastOptions {
  /** Send as binary. Default: true for bytes, false for strings. */
  binary?: boolean;
  /** A connection left out (the sender, typically). */
  except?: Connection<unknown>;
}

/**
 * Send one message to many connections, framed once: the same header and
 * payload bytes are handed to every connection (RFC 6455 §5.2: a server's
 * frames are unmasked, so one frame serves every peer; uncompressed, which
 * is legal with or without permessage-deflate, RFC 7692 §6). Each
 * connection applies its own backpressure policy. Returns how many
 * connections took the message (`written` or `queued`).
 *
 * Only the connections given, which live in this process: a broadcast does
 * not go through the pub/sub hub, so with a `RedisBroker` it does not
 * reach connections on other nodes. To reach every node, subscribe the
 * connections to a topic and publish to it (`server.publish(topic, data)`).
 */
export function broadcast(connections: Iterable<Connection<unknown>>, data: SendData, options: BroadcastOptions = {}): number {
  const isString = typeof data === 'string';
  const bytes = isString ? Buffer.from(data, 'utf8') : toBytes(data);
  const frame = prepareFrame(bytes, options.binary ?? !isString);
  const except = options.except;
  let delivered = 0;
  for (const connection of connections) {
    if (connection === except) continue;
    const status = connection.sendPrepared(frame);
    if (status === 'written' || status === 'queued') delivered++;
  }
  return delivered;
}
