/**
 * Room messages as a client receives them: each with its position in the
 * room's topic, `epoch` and `offset` (PROTOCOL.md, "Positions"), so the
 * client can say where it stopped and resume there on any server process.
 *
 * The position is known only once the broker stored the message, after the
 * chat published it, so it is added on the way out: this is the hub's
 * per-subscription envelope, computed and framed once per message for all
 * of a room's members on a process.
 */
import type { BrokerMessage } from '../../pubsub/broker.js';
import { unwrap, wrap } from './wire/envelope.js';
import { MAX_SERVER_IMAGE_HEADER_BYTES } from './wire/protocol.js';

const utf8 = new TextDecoder();

/**
 * A text message (one JSON object, as the chat published it) gains
 * `"epoch"` and `"offset"` as its first fields, spliced in without parsing
 * it again; an image's binary envelope gains them in its header. Anything
 * else (not the chat's) passes unchanged.
 */
export function withPosition(message: BrokerMessage): string | Uint8Array {
  const position = `"epoch":${JSON.stringify(message.epoch)},"offset":${message.offset}`;
  if (!message.binary) {
    const text = utf8.decode(message.data);
    if (!text.startsWith('{')) return text;
    return text.length === 2 ? `{${position}}` : `{${position},${text.slice(1)}`;
  }
  const envelope = unwrap(message.data, MAX_SERVER_IMAGE_HEADER_BYTES);
  if (!envelope.ok) return message.data;
  const header = { ...envelope.header, type: envelope.header['type'] as string, epoch: message.epoch, offset: message.offset };
  return wrap(header, envelope.payload);
}
