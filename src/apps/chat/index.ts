import { ConnectionState, type Connection } from '../../node/connection.js';
import type { PubSub } from '../../pubsub/pubsub.js';
import type { App } from '../app.js';
import { socketPath } from '../app.js';
import { pageDirOf } from '../paths.js';
import {
  encode,
  MAX_FRAME_BYTES,
  MAX_MESSAGE_BYTES,
  parseClientMessage,
  type ChatError,
  type ServerMessage,
} from './protocol.js';
import { RateLimiter, type RateLimitOptions } from './rate-limit.js';
import { ChatRooms, type ChatRoomsOptions, type Departure } from './rooms.js';

/**
 * The chat's socket glue: one route at /chat/ws, requests parsed by
 * protocol.ts, state kept by rooms.ts, limits by rate-limit.ts. Room-wide
 * messages (chat messages, join/leave notices, presence) are published on
 * the room's topic, so each is framed once for all of the room's members;
 * answers meant for one client (joined, history, errors) go to it alone.
 */
export interface ChatAppOptions {
  rateLimit?: RateLimitOptions;
  rooms?: ChatRoomsOptions;
}

/** Close reason for sustained abuse of the rate limit, sent with 1008. */
export const ABUSE_CLOSE_REASON = 'too many messages, too often';

/** The pub/sub topic of a room. */
export function roomTopic(room: string): string {
  return `chat/${room}`;
}

export function createChatApp(options: ChatAppOptions = {}): App {
  const app: App = {
    name: 'chat',
    title: 'Chat',
    summary: 'Rooms with nicknames, presence, join and leave notices, and the last 50 messages for newcomers.',
    pageDir: pageDirOf('chat'),
    mount(server, { pubsub, log }) {
      const rooms = new ChatRooms<Connection<unknown>>(options.rooms);
      const limiters = new Map<Connection<unknown>, RateLimiter>();

      const send = (connection: Connection<unknown>, message: ServerMessage): void => {
        connection.send(encode(message));
      };
      const fail = (connection: Connection<unknown>, error: ChatError, request?: string): void => {
        send(connection, request === undefined ? { type: 'error', ...error } : { type: 'error', request, ...error });
      };
      const announceDeparture = (connection: Connection<unknown>, departure: Departure): void => {
        const topic = roomTopic(departure.room);
        pubsub.unsubscribe(connection, topic);
        publish(pubsub, topic, { type: 'notice', event: 'leave', room: departure.room, nick: departure.nick, time: departure.time });
        publish(pubsub, topic, { type: 'presence', room: departure.room, nicks: departure.presence });
        log.debug(`chat leave #${departure.room} ${departure.nick}`);
      };

      const handle = (connection: Connection<unknown>, data: string | Buffer, isBinary: boolean): void => {
        // After a close was started (abuse below), what the peer still sends is not read.
        if (connection.state !== ConnectionState.Open) return;
        const limiter = limiters.get(connection)!;
        const verdict = limiter.check(performance.now());
        if (verdict !== 'accept') {
          fail(connection, {
            code: 'rate_limited',
            message:
              verdict === 'abuse'
                ? `Too many messages, too often: disconnected.`
                : `At most ${limiter.limit} messages per second: that one was not sent.`,
          });
          if (verdict === 'abuse') {
            log.info(`chat closing ${connection.remoteAddress ?? '-'}: rate limit exceeded ${limiter.abuseLimit} times within ${limiter.abuseWindowMs} ms`);
            // RFC 6455 §7.4.1: 1008, a message that violates the endpoint's policy.
            connection.close(1008, ABUSE_CLOSE_REASON);
          }
          return;
        }
        if (isBinary) {
          fail(connection, { code: 'invalid_message', message: 'Messages are JSON text; binary messages are not accepted.' });
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
            const topic = roomTopic(room);
            pubsub.subscribe(connection, topic);
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
        maxMessageSize: MAX_FRAME_BYTES,
        open(connection) {
          limiters.set(connection, new RateLimiter(options.rateLimit));
        },
        message: handle,
        close(connection) {
          limiters.delete(connection);
          const departure = rooms.leave(connection);
          if (departure !== null) announceDeparture(connection, departure);
        },
      });
    },
  };
  return app;
}

function publish(pubsub: PubSub, topic: string, message: ServerMessage): void {
  pubsub.publish(topic, encode(message));
}

export const chatApp: App = createChatApp();
