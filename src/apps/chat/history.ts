/**
 * A room's history is its topic's history (PROTOCOL.md, "History"): what
 * the broker keeps of the room's sequence, in Redis when the server runs on
 * several processes, so it survives a restart of every process. The topic
 * holds chat messages, images (their bytes included), join and leave
 * notices and presence lists; a newcomer is given the last 50 messages and
 * images among them, the images within the room's byte budget.
 */
import type { BrokerMessage, HistoryOptions, StreamPosition } from '../../pubsub/broker.js';
import type { PubSub } from '../../pubsub/pubsub.js';
import { unwrap } from './wire/envelope.js';
import { HISTORY_LENGTH, MAX_SERVER_IMAGE_HEADER_BYTES, type ChatImage, type HistoryEntry } from './wire/protocol.js';

/**
 * What the broker should keep of a room's topic: room for 50 messages
 * among the notices and presence lists around them (each join or leave adds
 * two entries), for a week without a message. Hosts give it to their broker
 * (`chatTopicHistory`); with less, newcomers see less.
 */
export const ROOM_TOPIC_HISTORY: HistoryOptions = { size: 200, ttlMs: 7 * 24 * 3600_000 };
/** Typing indicators are ephemeral: a topic with offsets but no history. */
export const TYPING_TOPIC_HISTORY: HistoryOptions = { size: 0, ttlMs: 0 };

/** The pub/sub topic of a room. */
export function roomTopic(room: string): string {
  return `chat/${room}`;
}

/** The topic of a room's typing indicators. */
export function typingTopic(room: string): string {
  return `chat-typing/${room}`;
}

/**
 * The history the chat's topics need, for a host building its broker
 * (`new MemoryBroker({ history })`, `new RedisBroker({ history })`):
 * undefined for topics that are not the chat's.
 */
export function chatTopicHistory(topic: string): HistoryOptions | undefined {
  if (topic.startsWith('chat/')) return ROOM_TOPIC_HISTORY;
  if (topic.startsWith('chat-typing/')) return TYPING_TOPIC_HISTORY;
  return undefined;
}

export interface HistoryBudget {
  /** Messages and images given, at most. Default 50. */
  length?: number;
  /** Bytes of images (as stored: header and bytes) given, at most; the oldest images go first, text stays. Default 10 MiB. */
  imageBytes?: number;
}

export interface RoomHistory {
  /** Oldest first. */
  messages: HistoryEntry[];
  /** The stored binary message of each image in `messages`, in the same order. */
  images: Uint8Array[];
}

const utf8 = new TextDecoder();

/**
 * Pick the newcomer's history from the room topic's entries (oldest
 * first): the last `length` chat messages and images; walking from the
 * newest, an image that would take the images past `imageBytes` is left
 * out (and counts for nothing), so the newest images stay.
 */
export function selectHistory(entries: readonly BrokerMessage[], budget: HistoryBudget = {}): RoomHistory {
  const length = budget.length ?? HISTORY_LENGTH;
  const imageBudget = budget.imageBytes ?? 10 * 1024 * 1024;
  const messages: HistoryEntry[] = [];
  const images: Uint8Array[] = [];
  let imageBytes = 0;
  for (let i = entries.length - 1; i >= 0 && messages.length < length; i--) {
    const entry = entries[i]!;
    if (entry.binary) {
      if (imageBytes + entry.data.length > imageBudget) continue;
      const envelope = unwrap(entry.data, MAX_SERVER_IMAGE_HEADER_BYTES);
      if (!envelope.ok || envelope.header['type'] !== 'image') continue;
      const { type: _type, ...image } = envelope.header;
      imageBytes += entry.data.length;
      messages.push(image as unknown as ChatImage);
      images.push(entry.data);
      continue;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(utf8.decode(entry.data));
    } catch {
      continue;
    }
    if (typeof parsed !== 'object' || parsed === null || (parsed as { type?: unknown }).type !== 'message') continue;
    const { type: _type, ...message } = parsed as Record<string, unknown>;
    messages.push(message as unknown as HistoryEntry);
  }
  return { messages: messages.reverse(), images: images.reverse() };
}

/** The topic's position and its retained entries up to it. */
export interface RecentEntries {
  position: StreamPosition;
  entries: readonly BrokerMessage[];
}

/**
 * Read the last entries the broker keeps of a topic, up to `reach` of
 * them. The broker lists what follows a position, and refuses when its
 * history does not reach back to it (trimmed by count or by age), so the
 * reach is halved until it fits: a handful of reads at most, each bounded
 * by the topic's history. A topic whose epoch changes meanwhile (its store
 * restarted) is read again, once.
 */
export async function readRecent(pubsub: PubSub, topic: string, reach = ROOM_TOPIC_HISTORY.size): Promise<RecentEntries> {
  let position = await pubsub.live(topic);
  let retried = false;
  let back = reach;
  while (back >= 1) {
    const result = await pubsub.history(topic, { epoch: position.epoch, offset: Math.max(0, position.offset - back) });
    if (result.ok) return { position: result.position, entries: result.messages };
    position = result.position;
    if (result.reason === 'epoch-changed' && !retried) {
      retried = true;
      continue;
    }
    back = Math.floor(back / 2);
  }
  return { position, entries: [] };
}
