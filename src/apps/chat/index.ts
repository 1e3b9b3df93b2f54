import { ConnectionState, type Connection } from '../../node/connection.js';
import { CloseCode } from '../../protocol/close-code.js';
import type { StreamPosition } from '../../pubsub/broker.js';
import type { App } from '../app.js';
import { socketPath } from '../app.js';
import { pageDirOf } from '../host/paths.js';
import { wrap } from './wire/envelope.js';
import { chatTopicHistory, readRecent, roomTopic, selectHistory, typingTopic, type HistoryBudget } from './history.js';
import { checkNick, checkRoom, nickKey } from './names.js';
import { withPosition } from './positions.js';
import {
  encode,
  MAX_FRAME_BYTES,
  MAX_MESSAGE_BYTES,
  MAX_WIRE_MESSAGE_BYTES,
  parseClientMessage,
  parseImageUpload,
  peekImageId,
  peekMessage,
  PROTOCOL_VERSION,
  TYPING_INTERVAL_MS,
  type ChatError,
  type ChatImage,
  type ChatMessage,
  type ImageHeader,
  type JoinRequest,
  type ServerMessage,
} from './wire/protocol.js';
import { ByteRateLimiter, messageRateLimit, type ByteRateOptions, type RateLimitOptions } from './rate-limit.js';
import { holderOf, RoomMembers } from './room-members.js';
import { createIdSource } from './ids.js';
import { SentIds, type SentIdsOptions } from './sent-ids.js';

export { roomTopic, typingTopic, chatTopicHistory, ROOM_TOPIC_HISTORY } from './history.js';

/**
 * The chat's socket glue: one route at /chat/ws, requests parsed by
 * wire/protocol.ts. The message rate is the server's (the route's
 * `rateLimit`, answered in-band by its `limited` hook); the image byte
 * allowance is rate-limit.ts's.
 *
 * No state that matters lives in this process (PROTOCOL.md, "Several
 * server processes"): a room's messages, images, join and leave notices
 * and presence lists are published on its topic, which orders them, keeps
 * its history (history.ts) and carries them to every process; nicknames
 * are the room's presence (room-members.ts), claimed atomically; resent
 * messages are recognised by their client id across processes
 * (sent-ids.ts). What stays here is per connection: its room and nickname,
 * its image allowance, the order of its requests.
 *
 * Compression (permessage-deflate, when the client offered it) is left on
 * for JSON text, which it shrinks well, and off for image bytes: PNG, JPEG,
 * GIF and WebP are compressed already. Published frames are never
 * compressed (they are framed once for all), and the direct sends of
 * history images say `compress: false`.
 */
export interface ChatAppOptions {
  rateLimit?: RateLimitOptions;
  /** The per-connection allowance of image bytes. */
  imageRate?: ByteRateOptions;
  /** What a newcomer is given of the room's past: 50 messages, 10 MiB of images by default. */
  history?: HistoryBudget;
  /** How long, and how many, client message ids are remembered to recognise a resend. */
  sentIds?: SentIdsOptions;
  /** Milliseconds clock for message times. Default `Date.now`. */
  now?: () => number;
}

/** Close reason for sustained abuse of the rate limit, sent with 1008. */
export const ABUSE_CLOSE_REASON = 'too many messages, too often';

/**
 * How many bytes may wait to be sent to one member before room messages
 * count it as too slow (the pub/sub hub's slow-subscriber policy): room for
 * the history's images (10 MiB by default) and a few 5 MB images more. The
 * hub's own default (1 MiB) would count a member still receiving one image
 * as too slow.
 */
export const ROOM_SUBSCRIBER_BUFFER_BYTES = 32 * 1024 * 1024;

/** How long the process that announced a dead process's member as gone keeps the right to (so others do not announce it again). */
const REAP_HOLD_MS = 60_000;

/** A connection in a room. */
interface Member {
  room: string;
  nick: string;
  /** The page's session token given at the join (or the connection's own). */
  session: string;
  /** When its last typing indicator went out (performance.now()). */
  lastTyping: number;
}

/** Per connection, whether in a room or not. */
interface Peer {
  /** Random: which connection holds a nickname. */
  readonly owner: string;
  readonly imageAllowance: ByteRateLimiter;
  member: Member | null;
  /** The connection's requests run one after the other (a message after a join waits for it). */
  queue: Promise<void>;
}

export function createChatApp(options: ChatAppOptions = {}): App {
  const app: App = {
    name: 'chat',
    title: 'Chat',
    summary:
      'Rooms with nicknames, presence, join and leave notices, images, typing, and the last 50 messages for newcomers; resumes after a reconnect.',
    pageDir: pageDirOf('chat'),
    topicHistory: chatTopicHistory,
    mount(server, { pubsub, log }) {
      const rate = messageRateLimit(options.rateLimit);
      const now = options.now ?? Date.now;
      const newId = createIdSource();
      const roomMembers = new RoomMembers(pubsub.presence);
      const sentIds = new SentIds(pubsub.presence, options.sentIds);
      const peers = new Map<Connection<unknown>, Peer>();
      /** Rooms with members on this process: their presence is watched (expiries of other processes' members). */
      const watched = new Map<string, { count: number; stop: () => void; nicks: Map<string, string> }>();
      const processId = globalThis.crypto.randomUUID();

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
      const unavailable = (connection: Connection<unknown>, request: string, error: unknown, id?: string): void => {
        log.info(`chat: ${request} failed: ${error instanceof Error ? error.message : String(error)}`);
        fail(connection, { code: 'unavailable', message: 'The server could not reach its shared store; try again in a moment.' }, request, id);
      };
      /** Answer a refusal by a rate limit; on sustained abuse, close. */
      const refuse = (connection: Connection<unknown>, abuse: boolean, message: string, request?: string, id?: string): void => {
        fail(connection, { code: 'rate_limited', message: abuse ? `Too many messages, too often: disconnected.` : message }, request, id);
        if (abuse) {
          log.info(`chat closing ${connection.remoteAddress ?? '-'}: rate limits exceeded ${rate.abuseLimit} times within ${rate.abuseWindowMs} ms`);
          // RFC 6455 §7.4.1: 1008, a message that violates the endpoint's policy.
          connection.close(CloseCode.PolicyViolation, ABUSE_CLOSE_REASON);
        }
      };
      /** Run a connection's request after the ones before it. */
      const enqueue = (peer: Peer, task: () => Promise<void>): void => {
        peer.queue = peer.queue.then(task).catch((error: unknown) => {
          log.info(`chat: ${error instanceof Error ? error.message : String(error)}`);
        });
      };
      const publish = (room: string, message: ServerMessage): Promise<StreamPosition> => pubsub.publish(roomTopic(room), encode(message));
      const publishPresence = async (room: string): Promise<void> => {
        const nicks = await roomMembers.nicks(room);
        const seen = watched.get(room)?.nicks;
        if (seen !== undefined) for (const nick of nicks) seen.set(nickKey(nick), nick);
        await publish(room, { type: 'presence', room, nicks });
      };

      /**
       * A member of another process that died (or was cut off) expired:
       * one process, the first to claim the right, announces it.
       */
      const reap = async (room: string, key: string): Promise<void> => {
        const topic = `chat-reaper/${room}`;
        if (!(await pubsub.presence.claim(topic, key, processId))) return;
        const release = setTimeout(() => void pubsub.presence.leave(topic, key).catch(() => undefined), REAP_HOLD_MS);
        release.unref();
        const nicks = watched.get(room)?.nicks;
        const nick = nicks?.get(key) ?? key;
        nicks?.delete(key);
        await publish(room, { type: 'notice', event: 'leave', room, nick, time: now() });
        await publishPresence(room);
        log.debug(`chat expired #${room} ${nick}`);
      };
      const watchRoom = (room: string): void => {
        const entry = watched.get(room);
        if (entry !== undefined) {
          entry.count++;
          return;
        }
        /** How the room's members show their nicknames, for announcing one that expired (by key; members only, so bounded). */
        const nicks = new Map<string, string>();
        const stop = roomMembers.watch(room, (event) => {
          if (event.type === 'join') {
            const holder = holderOf(event.member);
            if (holder !== null) nicks.set(event.member.id, holder.nick);
          } else if (!event.expired) {
            nicks.delete(event.id);
          } else {
            reap(room, event.id).catch((error: unknown) => log.info(`chat: announcing an expired member failed: ${String(error)}`));
          }
        });
        watched.set(room, { count: 1, stop, nicks });
      };
      const unwatchRoom = (room: string): void => {
        const entry = watched.get(room);
        if (entry === undefined || --entry.count > 0) return;
        entry.stop();
        watched.delete(room);
      };

      /**
       * Leave the room: the leave notice is stored before the nickname is
       * released, so whoever claims it next is announced after it.
       */
      const depart = async (connection: Connection<unknown>, peer: Peer): Promise<void> => {
        const member = peer.member;
        if (member === null) return;
        peer.member = null;
        const { room, nick, session } = member;
        pubsub.unsubscribe(connection, roomTopic(room));
        pubsub.unsubscribe(connection, typingTopic(room));
        try {
          // Taken over by a newer connection of the same session: that one is the member now.
          if (!(await roomMembers.holds(room, nick, peer.owner))) return;
          await publish(room, { type: 'notice', event: 'leave', room, nick, time: now() });
          await roomMembers.release(room, nick, session, peer.owner);
          await publishPresence(room);
          log.debug(`chat leave #${room} ${nick}`);
        } finally {
          unwatchRoom(room);
        }
      };

      /** Send room messages as the room got them, each with its position (a resumption's replay). */
      const sendPositioned = (connection: Connection<unknown>, messages: readonly Parameters<typeof withPosition>[0][]): void => {
        for (const message of messages) {
          const out = withPosition(message);
          if (typeof out === 'string') connection.send(out);
          else connection.send(out, { binary: true, compress: false });
        }
      };
      /** The room's last messages and their images, as of the returned position. */
      const sendHistory = async (connection: Connection<unknown>, room: string, missed: boolean): Promise<StreamPosition> => {
        const recent = await readRecent(pubsub, roomTopic(room));
        const history = selectHistory(recent.entries, options.history);
        const { epoch, offset } = recent.position;
        send(connection, { type: 'history', room, messages: history.messages, epoch, offset, ...(missed ? { missed } : {}) });
        // The history's images follow it, each as the room got it; uncompressed, as image bytes gain nothing from deflate.
        for (const image of history.images) connection.send(image, { binary: true, compress: false });
        return recent.position;
      };

      const join = async (connection: Connection<unknown>, peer: Peer, request: JoinRequest): Promise<void> => {
        const checkedNick = checkNick(request.nick);
        if (!checkedNick.ok) return fail(connection, checkedNick.error, 'join');
        const checkedRoom = checkRoom(request.room);
        if (!checkedRoom.ok) return fail(connection, checkedRoom.error, 'join');
        const nick = checkedNick.value;
        const room = checkedRoom.value;
        const current = peer.member;
        if (current !== null && current.room === room && current.nick === nick) {
          return fail(connection, { code: 'already_joined', message: `You are already in #${room} as ${nick}.` }, 'join');
        }
        const session = request.session ?? peer.owner;
        const claim = await roomMembers.claim(room, nick, session, peer.owner);
        if (claim === 'taken') {
          return fail(connection, { code: 'nick_taken', message: `The nickname ${nick} is taken in #${room}; pick another.` }, 'join');
        }
        // Moving: the old membership ends once the new one is sure (a refused join changes nothing).
        // A new spelling of the same nickname in the same room keeps the claim just renewed.
        if (current !== null) {
          if (current.room === room && nickKey(current.nick) === nickKey(nick)) {
            pubsub.unsubscribe(connection, roomTopic(room));
            pubsub.unsubscribe(connection, typingTopic(room));
            peer.member = null;
            unwatchRoom(room);
          } else {
            await depart(connection, peer);
          }
        }
        if (connection.state !== ConnectionState.Open) {
          await roomMembers.release(room, nick, session, peer.owner);
          return;
        }
        peer.member = { room, nick, session, lastTyping: -Infinity };
        watchRoom(room);
        send(connection, { type: 'joined', room, nick, version: PROTOCOL_VERSION });
        const topic = roomTopic(room);
        let position: StreamPosition | null = null;
        if (request.since !== undefined) {
          const missed = await pubsub.history(topic, request.since);
          if (missed.ok) {
            sendPositioned(connection, missed.messages);
            position = missed.position;
            send(connection, { type: 'resumed', room, epoch: position.epoch, offset: position.offset, replayed: missed.messages.length });
          }
        }
        position ??= await sendHistory(connection, room, request.since !== undefined);
        // From that position on, live: what was published meanwhile is replayed first, with no hole or duplicate at the seam.
        let seamLost = false;
        await pubsub.subscribeSince(connection, topic, position, {
          envelope: withPosition,
          maxBuffer: ROOM_SUBSCRIBER_BUFFER_BYTES,
          onRecovery(result) {
            seamLost = !result.recovered;
          },
        });
        // The room's store lost its data between the read and the subscription (rare): a fresh history, flagged.
        if (seamLost && connection.state === ConnectionState.Open) await sendHistory(connection, room, true);
        pubsub.subscribe(connection, typingTopic(room));
        // A member taken over from a connection not seen closing (its process died) never left: no new notice.
        if (claim === 'claimed' || (current !== null && current.room !== room))
          await publish(room, { type: 'notice', event: 'join', room, nick, time: now() });
        await publishPresence(room);
        log.debug(`chat join #${room} ${nick}${claim === 'resumed' ? ' (resumed)' : ''}`);
      };

      const post = async (connection: Connection<unknown>, peer: Peer, text: string, clientId: string | undefined): Promise<void> => {
        const member = peer.member;
        if (member === null) return fail(connection, { code: 'not_joined', message: 'Join a room before sending messages.' }, 'message');
        if (!/\S/u.test(text)) return fail(connection, { code: 'empty_message', message: 'An empty message is not sent.' }, 'message');
        const { room, nick } = member;
        if (clientId !== undefined && !(await sentIds.first(room, nickKey(nick), clientId))) {
          // Posted already (a resend after a reconnect): its broadcast is in the room's sequence.
          send(connection, { type: 'duplicate', room, id: clientId });
          return;
        }
        const message: ChatMessage = { id: newId(), room, nick, text, time: now() };
        if (clientId !== undefined) message.clientId = clientId;
        try {
          await publish(room, { type: 'message', ...message });
        } catch (error) {
          // Not acknowledged: perhaps not stored. The id is forgotten so that the page's retry is posted, not answered duplicate.
          if (clientId !== undefined) await sentIds.forget(room, nickKey(nick), clientId).catch(() => undefined);
          throw error;
        }
      };

      /** A binary message: an image for the room (PROTOCOL.md, "Images"). */
      const postImage = async (connection: Connection<unknown>, peer: Peer, data: Buffer, at: number): Promise<void> => {
        const parsed = parseImageUpload(data);
        if (!parsed.ok) return fail(connection, parsed.error, parsed.request, parsed.id);
        const { upload } = parsed;
        const size = upload.bytes.length;
        const member = peer.member;
        if (member === null) return fail(connection, { code: 'not_joined', message: 'Join a room before sending images.' }, 'image', upload.clientId);
        const allowance = peer.imageAllowance;
        if (!allowance.take(size, at)) {
          const seconds = Math.max(1, Math.ceil(allowance.waitFor(size) / 1000));
          const message = `Images are limited to ${describeBytes(allowance.burstBytes)} at once and ${describeBytes(allowance.bytesPerSecond)} per second: wait ${seconds} s before sending that one.`;
          // Counted toward sustained abuse together with the refusals of the message rate.
          refuse(connection, server.rateViolation(connection), message, 'image', upload.clientId);
          return;
        }
        const image: ChatImage = { id: newId(), room: member.room, nick: member.nick, time: now(), mime: upload.mime, size, name: upload.name };
        if (upload.clientId !== undefined) image.clientId = upload.clientId;
        const header: ImageHeader = { type: 'image', ...image };
        // Framed once, uncompressed, for every member (the sender included: its copy confirms the upload).
        await pubsub.publish(roomTopic(member.room), wrap(header, upload.bytes), { binary: true });
        log.debug(`chat image #${member.room} ${member.nick} ${upload.mime} ${size} B`);
      };

      const typing = (peer: Peer): void => {
        const member = peer.member;
        if (member === null) return;
        const at = performance.now();
        // Ephemeral and frequent: at most one per interval goes out, the rest are dropped without an answer.
        if (at - member.lastTyping < TYPING_INTERVAL_MS) return;
        member.lastTyping = at;
        void pubsub.publish(typingTopic(member.room), encode({ type: 'typing', room: member.room, nick: member.nick }));
      };

      const handle = (connection: Connection<unknown>, data: string | Buffer, isBinary: boolean): void => {
        // After a close was started (abuse below), what the peer still sends is not read.
        if (connection.state !== ConnectionState.Open) return;
        const peer = peers.get(connection);
        if (peer === undefined) return;
        // The route admits messages up to the size of an image; text has a far lower ceiling.
        if (!isBinary && (data as string).length > MAX_FRAME_BYTES / 3 && Buffer.byteLength(data as string, 'utf8') > MAX_FRAME_BYTES) {
          // RFC 6455 §7.4.1: 1009, a message too big to process.
          connection.close(CloseCode.MessageTooBig, 'message too big');
          return;
        }
        // The message rate was checked by the server before this hook (see `limited` below).
        if (isBinary) {
          const at = performance.now();
          const bytes = data as Buffer;
          enqueue(peer, () =>
            postImage(connection, peer, bytes, at).catch((error: unknown) => unavailable(connection, 'image', error, peekImageId(bytes))),
          );
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
          case 'join':
            enqueue(peer, () => join(connection, peer, request).catch((error: unknown) => unavailable(connection, 'join', error)));
            return;
          case 'message':
            enqueue(peer, () =>
              post(connection, peer, request.text, request.id).catch((error: unknown) => unavailable(connection, 'message', error, request.id)),
            );
            return;
          case 'typing':
            enqueue(peer, async () => typing(peer));
            return;
          case 'leave':
            enqueue(peer, async () => {
              if (peer.member === null) return fail(connection, { code: 'not_joined', message: 'You are not in a room.' }, 'leave');
              const room = peer.member.room;
              await depart(connection, peer).catch((error: unknown) => log.info(`chat: leave announcement failed: ${String(error)}`));
              send(connection, { type: 'left', room });
            });
            return;
          case 'ping':
            send(connection, { type: 'pong' });
            return;
        }
      };

      server.route(socketPath(app), {
        maxMessageSize: MAX_WIRE_MESSAGE_BYTES,
        rateLimit: rate,
        open(connection) {
          peers.set(connection, {
            owner: globalThis.crypto.randomUUID(),
            imageAllowance: new ByteRateLimiter(options.imageRate),
            member: null,
            queue: Promise.resolve(),
          });
        },
        message: handle,
        limited(connection, { data, isBinary, closing }) {
          const message = `At most ${rate.limit} messages per ${rate.windowMs === 1000 ? 'second' : `${rate.windowMs} ms`}: that one was not sent.`;
          const { request, id } = isBinary ? { request: 'image', id: peekImageId(data as Buffer) } : peekMessage(data as string);
          // The error goes out before the server's close; closing here first puts the chat's own reason in the close frame.
          if (closing) return refuse(connection, closing, message, request, id);
          // Otherwise after the answers to the requests before it, in the order they came.
          const peer = peers.get(connection);
          if (peer === undefined) refuse(connection, false, message, request, id);
          else enqueue(peer, async () => refuse(connection, false, message, request, id));
        },
        close(connection) {
          const peer = peers.get(connection);
          if (peer === undefined) return;
          // After the requests still running (a join in progress ends before its member leaves).
          enqueue(peer, async () => {
            peers.delete(connection);
            await depart(connection, peer);
          });
        },
      });
      return () => {
        sentIds.stop();
        for (const entry of watched.values()) entry.stop();
        watched.clear();
      };
    },
  };
  return app;
}

/** 10485760 -> "10 MB", 1536 -> "1.5 KB": for sentences, in binary units as the limits are. */
function describeBytes(bytes: number): string {
  const [amount, unit] =
    bytes >= 1024 * 1024 ? [bytes / (1024 * 1024), 'MB']
    : bytes >= 1024 ? [bytes / 1024, 'KB']
    : [bytes, 'bytes'];
  return `${Number(amount.toFixed(1))} ${unit}`;
}

export const chatApp: App = createChatApp();
