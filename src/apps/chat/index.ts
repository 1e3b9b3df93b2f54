import { ConnectionState, type Connection } from '../../node/connection.js';
import type { PubSub } from '../../pubsub/pubsub.js';
import type { App } from '../app.js';
import { socketPath } from '../app.js';
import { pageDirOf } from '../paths.js';
import { wrap } from './envelope.js';
import {
  encode,
  MAX_FRAME_BYTES,
  MAX_MESSAGE_BYTES,
  MAX_WIRE_MESSAGE_BYTES,
  parseClientMessage,
  parseImageUpload,
  peekImageId,
  type ChatError,
  type ImageHeader,
  type ServerMessage,
} from './protocol.js';
import { ByteRateLimiter, messageRateLimit, type ByteRateOptions, type RateLimitOptions } from './rate-limit.js';
import { ChatRooms, type ChatRoomsOptions, type Departure } from './rooms.js';

/**
 * The chat's socket glue: one route at /chat/ws, requests parsed by
 * protocol.ts, state kept by rooms.ts. The message rate is the server's
 * (the route's `rateLimit`, answered in-band by its `limited` hook); the
 * image byte allowance is rate-limit.ts's. Room-wide
 * messages (chat messages, images, join/leave notices, presence) are
 * published on the room's topic, so each is framed once for all of the
 * room's members; answers meant for one client (joined, history and its
 * images, errors) go to it alone.
 *
 * Compression (permessage-deflate, when the client offered it) is left on
 * for JSON text, which it shrinks well, and off for image bytes: PNG, JPEG,
 * GIF and WebP are compressed already, and deflating megabytes again costs
 * CPU for nothing. Published frames are never compressed (they are framed
 * once for all), and the direct sends of history images say `compress: false`.
 */
export interface ChatAppOptions {
  rateLimit?: RateLimitOptions;
  /** The per-connection allowance of image bytes. */
  imageRate?: ByteRateOptions;
  rooms?: ChatRoomsOptions;
}

/** Close reason for sustained abuse of the rate limit, sent with 1008. */
export const ABUSE_CLOSE_REASON = 'too many messages, too often';

/**
 * How many bytes may wait to be sent to one member before room messages
 * skip it (the pub/sub hub's slow-subscriber policy): room for the history's
 * images (10 MiB by default) and a few 5 MB images more. The hub's own
 * default (1 MiB) would count a member still receiving one image as too slow.
 */
export const ROOM_SUBSCRIBER_BUFFER_BYTES = 32 * 1024 * 1024;

/** The pub/sub topic of a room. */
export function roomTopic(room: string): string {
  return `chat/${room}`;
}

export function createChatApp(options: ChatAppOptions = {}): App {
  const app: App = {
    name: 'chat',
    title: 'Chat',
    summary: 'Rooms with nicknames, presence, join and leave notices, images, and the last 50 messages for newcomers.',
    pageDir: pageDirOf('chat'),
    mount(server, { pubsub, log }) {
      const rooms = new ChatRooms<Connection<unknown>>(options.rooms);
      const rate = messageRateLimit(options.rateLimit);
      const imageAllowances = new Map<Connection<unknown>, ByteRateLimiter>();

      const send = (connection: Connection<unknown>, message: ServerMessage): void => {
        connection.send(encode(message));
      };
      const fail = (connection: Connection<unknown>, error: ChatError, request?: string, id?: string): void => {
        send(connection, {
          type: 'error',
          ...(request === undefined ? {} : { request }),
          ...(id === undefined ? {} : { id }),
          ...error,
        });
      };
      /** Answer a refusal by a rate limit; on sustained abuse, close. */
      const refuse = (connection: Connection<unknown>, abuse: boolean, message: string, request?: string, id?: string): void => {
        fail(connection, { code: 'rate_limited', message: abuse ? `Too many messages, too often: disconnected.` : message }, request, id);
        if (abuse) {
          log.info(`chat closing ${connection.remoteAddress ?? '-'}: rate limits exceeded ${rate.abuseLimit} times within ${rate.abuseWindowMs} ms`);
          // RFC 6455 §7.4.1: 1008, a message that violates the endpoint's policy.
          connection.close(1008, ABUSE_CLOSE_REASON);
        }
      };
      const announceDeparture = (connection: Connection<unknown>, departure: Departure): void => {
        const topic = roomTopic(departure.room);
        pubsub.unsubscribe(connection, topic);
        publish(pubsub, topic, { type: 'notice', event: 'leave', room: departure.room, nick: departure.nick, time: departure.time });
        publish(pubsub, topic, { type: 'presence', room: departure.room, nicks: departure.presence });
        log.debug(`chat leave #${departure.room} ${departure.nick}`);
      };

      /** A binary message: an image for the room (PROTOCOL.md, "Images"). */
      const handleImage = (connection: Connection<unknown>, data: Buffer, now: number): void => {
        const parsed = parseImageUpload(data);
        if (!parsed.ok) {
          fail(connection, parsed.error, parsed.request, parsed.id);
          return;
        }
        const { upload } = parsed;
        const size = upload.bytes.length;
        if (rooms.membership(connection) === undefined) {
          fail(connection, { code: 'not_joined', message: 'Join a room before sending images.' }, 'image', upload.clientId);
          return;
        }
        const allowance = imageAllowances.get(connection)!;
        if (!allowance.take(size, now)) {
          const seconds = Math.max(1, Math.ceil(allowance.waitFor(size) / 1000));
          const message = `Images are limited to ${describeBytes(allowance.burstBytes)} at once and ${describeBytes(allowance.bytesPerSecond)} per second: wait ${seconds} s before sending that one.`;
          // Counted toward sustained abuse together with the refusals of the message rate.
          refuse(connection, server.rateViolation(connection), message, 'image', upload.clientId);
          return;
        }
        const outcome = rooms.postImage(connection, { name: upload.name, mime: upload.mime, size, clientId: upload.clientId }, (image) => {
          const header: ImageHeader = { type: 'image', ...image };
          return wrap(header, upload.bytes);
        });
        if (!outcome.ok) {
          fail(connection, outcome.error, 'image', upload.clientId);
          return;
        }
        // Framed once, uncompressed, for every member (the sender included: its copy confirms the upload).
        pubsub.publish(roomTopic(outcome.image.room), outcome.stored, { binary: true });
        log.debug(`chat image #${outcome.image.room} ${outcome.image.nick} ${outcome.image.mime} ${size} B`);
      };

      const handle = (connection: Connection<unknown>, data: string | Buffer, isBinary: boolean): void => {
        // After a close was started (abuse below), what the peer still sends is not read.
        if (connection.state !== ConnectionState.Open) return;
        // The route admits messages up to the size of an image; text has a far lower ceiling.
        if (!isBinary && (data as string).length > MAX_FRAME_BYTES / 3 && Buffer.byteLength(data as string, 'utf8') > MAX_FRAME_BYTES) {
          // RFC 6455 §7.4.1: 1009, a message too big to process.
          connection.close(1009, 'message too big');
          return;
        }
        // The message rate was checked by the server before this hook (see `limited` below).
        if (isBinary) {
          handleImage(connection, data as Buffer, performance.now());
          return;
        }
        const text = data as string;
        // A UTF-16 length under a third of the limit cannot exceed it in UTF-8: skip the count for ordinary messages.
        if (text.length * 3 > MAX_MESSAGE_BYTES && Buffer.byteLength(text, 'utf8') > MAX_MESSAGE_BYTES) {
          fail(connection, { code: 'too_large', message: `A message may have at most ${MAX_MESSAGE_BYTES / 1024} KB; that one was not sent.` });
          return;
        }
        const parsed = parseClientMessage(text);
        if (!parsed.ok) {
          fail(connection, parsed.error, parsed.request);
          return;
        }
        const request = parsed.message;
        switch (request.type) {
          case 'join': {
            const outcome = rooms.join(connection, request.nick, request.room);
            if (!outcome.ok) {
              fail(connection, outcome.error, 'join');
              return;
            }
            if (outcome.departure !== null) announceDeparture(connection, outcome.departure);
            const { room, nick } = outcome;
            send(connection, { type: 'joined', room, nick });
            send(connection, { type: 'history', room, messages: outcome.history });
            // The history's images follow it, each as the room got it; uncompressed, as image bytes gain nothing from deflate.
            for (const image of outcome.images) connection.send(image, { binary: true, compress: false });
            const topic = roomTopic(room);
            pubsub.subscribe(connection, topic, { maxBuffer: ROOM_SUBSCRIBER_BUFFER_BYTES });
            publish(pubsub, topic, { type: 'notice', event: 'join', room, nick, time: outcome.time });
            publish(pubsub, topic, { type: 'presence', room, nicks: outcome.presence });
            log.debug(`chat join #${room} ${nick}`);
            return;
          }
          case 'message': {
            const outcome = rooms.post(connection, request.text);
            if (!outcome.ok) {
              fail(connection, outcome.error, 'message');
              return;
            }
            publish(pubsub, roomTopic(outcome.message.room), { type: 'message', ...outcome.message });
            return;
          }
          case 'leave': {
            const departure = rooms.leave(connection);
            if (departure === null) {
              fail(connection, { code: 'not_joined', message: 'You are not in a room.' }, 'leave');
              return;
            }
            announceDeparture(connection, departure);
            send(connection, { type: 'left', room: departure.room });
            return;
          }
          case 'ping':
            send(connection, { type: 'pong' });
            return;
        }
      };

      server.route(socketPath(app), {
        maxMessageSize: MAX_WIRE_MESSAGE_BYTES,
        rateLimit: rate,
        open(connection) {
          imageAllowances.set(connection, new ByteRateLimiter(options.imageRate));
        },
        message: handle,
        limited(connection, { data, isBinary, closing }) {
          const message = `At most ${rate.limit} messages per ${rate.windowMs === 1000 ? 'second' : `${rate.windowMs} ms`}: that one was not sent.`;
          // The error goes out before the server's close; closing here first puts the chat's own reason in the close frame.
          if (isBinary) refuse(connection, closing, message, 'image', peekImageId(data as Buffer));
          else refuse(connection, closing, message);
        },
        close(connection) {
          imageAllowances.delete(connection);
          const departure = rooms.leave(connection);
          if (departure !== null) announceDeparture(connection, departure);
        },
      });
    },
  };
  return app;
}

/** 10485760 -> "10 MB", 1536 -> "1.5 KB": for sentences, in binary units as the limits are. */
function describeBytes(bytes: number): string {
  const [amount, unit] = bytes >= 1024 * 1024 ? [bytes / (1024 * 1024), 'MB'] : bytes >= 1024 ? [bytes / 1024, 'KB'] : [bytes, 'bytes'];
  return `${Number(amount.toFixed(1))} ${unit}`;
}

function publish(pubsub: PubSub, topic: string, message: ServerMessage): void {
  pubsub.publish(topic, encode(message));
}

export const chatApp: App = createChatApp();
