import { once } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { createChatApp, roomTopic, type ChatAppOptions } from '../../src/apps/chat/index.js';
import { MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, type ChatMessage, type ServerMessage } from '../../src/apps/chat/wire/protocol.js';
import { AppServer } from '../../src/apps/host/server.js';
import { Connection } from '../../src/node/connection.js';
import { envelope, GIF, JPEG, png, readEnvelope, WEBP } from './chat/samples.js';

/** Server-side rules of the chat protocol, checked over real sockets on 127.0.0.1 with `ws` clients. */

const WAIT_MS = 3000;

let server: AppServer | null = null;
const clients: ChatClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate();
  await server?.close();
  server = null;
  vi.restoreAllMocks();
});

async function start(options: ChatAppOptions = {}): Promise<number> {
  server = new AppServer({ apps: [createChatApp(options)], logLevel: 'silent', websocket: { heartbeat: false } });
  return (await server.listen(0)).port;
}

/** For tests that send more than 5 messages a second about something else than the rate limit. */
const UNLIMITED: ChatAppOptions = { rateLimit: { limit: 1000 } };

type Message = ServerMessage & Record<string, unknown>;

/** An image as a client receives it: the header of its binary message, and the image's bytes. */
interface ReceivedImage {
  header: Record<string, unknown>;
  bytes: Buffer;
}

/**
 * A `ws` client that keeps every message it receives: JSON text read in
 * order through a cursor, images (binary) in their own list, and the order
 * of both in `sequence` (`<type>` for text, `image:<id>` for images).
 */
/** Remove `epoch` and `offset` from a message (or image header) and describe them. */
function takePosition(message: Record<string, unknown>): string {
  const { epoch, offset } = message;
  const type = String(message['type']);
  if (typeof epoch !== 'string' || typeof offset !== 'number') return type;
  delete message['epoch'];
  delete message['offset'];
  return `${type}@${offset}`;
}

class ChatClient {
  readonly received: Message[] = [];
  readonly images: ReceivedImage[] = [];
  readonly sequence: string[] = [];
  /**
   * The position (protocol 2) each message carried, in arrival order, as
   * `<type>@<offset>`, or `<type>` for one without: taken out of the
   * message so the assertions on its content stay about the content.
   */
  readonly positions: string[] = [];
  epoch: string | null = null;
  readonly closed: Promise<{ code: number; reason: string }>;
  private cursor = 0;
  private wake: (() => void) | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) {
        const image = readEnvelope(data);
        this.positions.push(takePosition(image.header));
        this.images.push(image);
        this.sequence.push(`image:${String(image.header['id'])}`);
      } else {
        const message = JSON.parse(String(data)) as Message;
        this.positions.push(takePosition(message));
        this.received.push(message);
        this.sequence.push(message.type);
      }
      this.wake?.();
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  }

  /** The epoch of room general's topic on the test's server. */
  static async epochOf(_port: number): Promise<string> {
    return (await server!.pubsub.live(roomTopic('general'))).epoch;
  }

  static async open(port: number): Promise<ChatClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/chat/ws`);
    const client = new ChatClient(ws);
    clients.push(client);
    await once(ws, 'open');
    return client;
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** The next unread message, whatever it is. */
  async next(): Promise<Message> {
    return this.nextWhere(() => true, 'any message', true);
  }

  /** Skip ahead to the next unread message matching `predicate`. */
  async nextWhere(predicate: (message: Message) => boolean, what: string, strict = false): Promise<Message> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      while (this.cursor < this.received.length) {
        const message = this.received[this.cursor++]!;
        if (predicate(message)) return message;
        if (strict) throw new Error(`expected ${what}, got ${JSON.stringify(message)}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.received)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** Wait until `count` images have arrived in all. */
  async imageCount(count: number): Promise<ReceivedImage[]> {
    const deadline = Date.now() + WAIT_MS;
    while (this.images.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${count} images; received ${this.images.length} and ${JSON.stringify(this.received)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    return this.images.slice(0, count);
  }

  sendImage(header: unknown, bytes: Uint8Array): void {
    this.ws.send(envelope(header, bytes), { binary: true });
  }

  nextOfType(type: string): Promise<Message> {
    return this.nextWhere((message) => message.type === type, `a "${type}" message`);
  }

  /** Join and read the four answers every join produces; returns the history. */
  async join(nick: string, room?: string): Promise<ChatMessage[]> {
    this.send(room === undefined ? { type: 'join', nick } : { type: 'join', nick, room });
    const joined = await this.next();
    expect(joined).toMatchObject({ type: 'joined', nick });
    const history = await this.next();
    expect(history.type).toBe('history');
    expect(await this.next()).toMatchObject({ type: 'notice', event: 'join', nick });
    expect((await this.next()).type).toBe('presence');
    return (history as Extract<ServerMessage, { type: 'history' }>).messages as ChatMessage[];
  }

  /** Nothing more arrives within `ms`. */
  async quietFor(ms: number): Promise<void> {
    const before = this.received.length;
    await new Promise((resolve) => setTimeout(resolve, ms));
    expect(this.received.slice(before)).toEqual([]);
    this.cursor = this.received.length;
  }

  async closeCode(): Promise<{ code: number; reason: string }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error('the connection did not close in time')), WAIT_MS);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

describe('chat: joining', () => {
  it('answers a join with joined, history, the join notice and presence, in that order, in room general by default', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    ann.send({ type: 'join', nick: 'ann' });
    expect(await ann.next()).toEqual({ type: 'joined', room: 'general', nick: 'ann', version: 2 });
    expect(await ann.next()).toEqual({ type: 'history', room: 'general', messages: [] });
    const notice = await ann.next();
    expect(notice).toMatchObject({ type: 'notice', event: 'join', room: 'general', nick: 'ann' });
    expect(Math.abs((notice['time'] as number) - Date.now())).toBeLessThan(5000);
    expect(await ann.next()).toEqual({ type: 'presence', room: 'general', nicks: ['ann'] });
  });

  it('lower-cases room names and keeps rooms apart', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    const bob = await ChatClient.open(port);
    ann.send({ type: 'join', nick: 'ann', room: 'Kitchen' });
    expect(await ann.next()).toEqual({ type: 'joined', room: 'kitchen', nick: 'ann', version: 2 });
    await bob.join('bob', 'garden');
    ann.send({ type: 'message', text: 'kitchen only' });
    await ann.nextWhere((message) => message.type === 'message' && message['text'] === 'kitchen only', 'own message');
    await bob.quietFor(150);
  });

  it('refuses a nickname taken in the room, whatever its case, and lets the user pick another', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    await ann.join('Ann');
    const other = await ChatClient.open(port);
    other.send({ type: 'join', nick: 'ann' });
    const error = await other.next();
    expect(error).toMatchObject({ type: 'error', code: 'nick_taken', request: 'join' });
    expect(error['message']).toMatch(/taken/);
    // The connection stays, nothing was announced, and another nickname works.
    await ann.quietFor(100);
    await other.join('ann2');
    // The same nickname is free in another room.
    const third = await ChatClient.open(port);
    await third.join('ann', 'elsewhere');
  });

  it('refuses invalid nicknames and room names with their own codes', async () => {
    const port = await start(UNLIMITED);
    const client = await ChatClient.open(port);
    for (const nick of ['', 'a'.repeat(25), 'ann lee', '<b>', '_ann', 'ann\n']) {
      client.send({ type: 'join', nick });
      expect(await client.next()).toMatchObject({ type: 'error', code: 'invalid_nick', request: 'join' });
    }
    for (const room of ['', 'r'.repeat(33), 'two words', '-dash', 'caf\u00e9']) {
      client.send({ type: 'join', nick: 'ann', room });
      expect(await client.next()).toMatchObject({ type: 'error', code: 'invalid_room', request: 'join' });
    }
    // 24 characters of any script are fine.
    await client.join('\u00e9'.repeat(24));
  });

  it('moves a member who joins another room: the old room sees it leave', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    const bob = await ChatClient.open(port);
    await ann.join('ann');
    await bob.join('bob');
    await ann.nextOfType('presence');
    bob.send({ type: 'join', nick: 'bob', room: 'other' });
    expect(await ann.next()).toMatchObject({ type: 'notice', event: 'leave', nick: 'bob', room: 'general' });
    expect(await ann.next()).toEqual({ type: 'presence', room: 'general', nicks: ['ann'] });
    expect(await bob.nextOfType('joined')).toEqual({ type: 'joined', room: 'other', nick: 'bob', version: 2 });
  });

  it('answers a repeated identical join with already_joined', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    ann.send({ type: 'join', nick: 'ann', room: 'general' });
    expect(await ann.next()).toMatchObject({ type: 'error', code: 'already_joined' });
  });
});

describe('chat: messages, notices and presence', () => {
  it('delivers a message to everyone in the room, stamped by the server with sender, time and id', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    const bob = await ChatClient.open(port);
    await ann.join('ann');
    await bob.join('bob');
    const before = Date.now();
    // A client cannot choose its sender, time or id.
    bob.send({ type: 'message', text: 'hi <b>ann</b>', nick: 'ann', time: 1, id: 'forged' });
    const atAnn = await ann.nextOfType('message');
    const atBob = await bob.nextOfType('message');
    expect(atAnn).toEqual(atBob);
    expect(atAnn).toMatchObject({ type: 'message', room: 'general', nick: 'bob', text: 'hi <b>ann</b>' });
    expect(atAnn['id']).toMatch(/^[0-9a-z]+-[0-9a-z]+$/);
    expect(atAnn['time']).toBeGreaterThanOrEqual(before - 1000);
    expect(atAnn['time']).toBeLessThanOrEqual(Date.now() + 1000);
    bob.send({ type: 'message', text: 'again' });
    expect((await ann.nextOfType('message'))['id']).not.toBe(atAnn['id']);
  });

  it('frames each room broadcast once for all the members (it goes through the pub/sub hub)', async () => {
    const port = await start();
    const members = [await ChatClient.open(port), await ChatClient.open(port), await ChatClient.open(port)];
    for (const [index, member] of members.entries()) await member.join(`m${index}`);
    expect(server!.pubsub.subscriberCount(roomTopic('general'))).toBe(3);
    const spy = vi.spyOn(Connection.prototype, 'sendPrepared');
    members[0]!.send({ type: 'message', text: 'once' });
    for (const member of members) await member.nextOfType('message');
    expect(spy).toHaveBeenCalledTimes(3);
    const frames = spy.mock.calls.map(([frame]) => frame);
    expect(frames[1]).toBe(frames[0]);
    expect(frames[2]).toBe(frames[0]);
  });

  it('shows everyone in the room join and leave notices and the new presence list', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    const bob = await ChatClient.open(port);
    await ann.join('ann');
    await bob.join('Bob');
    expect(await ann.next()).toMatchObject({ type: 'notice', event: 'join', nick: 'Bob' });
    expect(await ann.next()).toEqual({ type: 'presence', room: 'general', nicks: ['ann', 'Bob'] });
    bob.send({ type: 'leave' });
    expect(await ann.next()).toMatchObject({ type: 'notice', event: 'leave', nick: 'Bob', room: 'general' });
    expect(await ann.next()).toEqual({ type: 'presence', room: 'general', nicks: ['ann'] });
    expect(await bob.next()).toEqual({ type: 'left', room: 'general' });
    // Gone from the room: its messages no longer reach bob, and bob cannot post.
    ann.send({ type: 'message', text: 'after' });
    await ann.nextOfType('message');
    await bob.quietFor(100);
    bob.send({ type: 'message', text: 'hello?' });
    expect(await bob.next()).toMatchObject({ type: 'error', code: 'not_joined', request: 'message' });
    bob.send({ type: 'leave' });
    expect(await bob.next()).toMatchObject({ type: 'error', code: 'not_joined', request: 'leave' });
  });

  it('removes a member whose connection drops: notice, presence, and its nickname free again', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    const bob = await ChatClient.open(port);
    await ann.join('ann');
    await bob.join('bob');
    await ann.nextOfType('presence');
    bob.ws.terminate();
    expect(await ann.next()).toMatchObject({ type: 'notice', event: 'leave', nick: 'bob' });
    expect(await ann.next()).toEqual({ type: 'presence', room: 'general', nicks: ['ann'] });
    expect(server!.pubsub.subscriberCount(roomTopic('general'))).toBe(1);
    const again = await ChatClient.open(port);
    await again.join('bob');
  });

  it('gives a newcomer the last 50 messages of the room, oldest first', async () => {
    const port = await start(UNLIMITED);
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    for (let i = 1; i <= 55; i++) ann.send({ type: 'message', text: `m${i}` });
    await ann.nextWhere((message) => message['text'] === 'm55', 'the last message');
    const sent = ann.received.filter((message) => message.type === 'message');
    const bob = await ChatClient.open(port);
    const history = await bob.join('bob');
    expect(history.map((message) => message.text)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i + 6}`));
    // History entries are the very messages the room saw.
    expect(history).toEqual(sent.slice(5).map(({ type: _type, ...rest }) => rest));
  });

  it('answers a blank message with empty_message', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    ann.send({ type: 'message', text: ' \n\t ' });
    expect(await ann.next()).toMatchObject({ type: 'error', code: 'empty_message', request: 'message' });
  });

  it('answers ping with pong', async () => {
    const port = await start();
    const client = await ChatClient.open(port);
    client.send({ type: 'ping' });
    expect(await client.next()).toEqual({ type: 'pong' });
  });
});

describe('chat: bad input', () => {
  it('answers malformed JSON, a non-object, a missing type, wrong field types and binary with errors, and stays connected', async () => {
    const port = await start(UNLIMITED);
    const client = await ChatClient.open(port);
    client.send('{"type": "join", ');
    expect(await client.next()).toMatchObject({ type: 'error', code: 'invalid_json' });
    client.send('[1, 2]');
    expect(await client.next()).toMatchObject({ type: 'error', code: 'invalid_message' });
    client.send('{"nick": "ann"}');
    expect(await client.next()).toMatchObject({ type: 'error', code: 'invalid_message' });
    client.send({ type: 'join', nick: 42 });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'invalid_message', request: 'join' });
    client.ws.send(Buffer.from('{"type":"ping"}'), { binary: true });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'invalid_message' });
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    await client.join('ann');
  });

  it('answers an unknown type with unknown_type, naming it, and stays connected', async () => {
    const port = await start();
    const client = await ChatClient.open(port);
    client.send({ type: 'shout', text: 'hey' });
    const error = await client.next();
    expect(error).toMatchObject({ type: 'error', code: 'unknown_type', request: 'shout' });
    expect(error['message']).toMatch(/shout/);
    client.send({ type: 'ping' });
    expect(await client.next()).toEqual({ type: 'pong' });
  });
});

describe('chat: limits', () => {
  it('drops the sixth message within a second with a rate_limited error, and accepts again a second later', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    // The join was the first message of this second: 4 more pass, the next 2 do not.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    for (let i = 1; i <= 6; i++) ann.send({ type: 'message', text: `burst ${i}` });
    for (let i = 1; i <= 5; i++) expect(await ann.next()).toMatchObject({ type: 'message', text: `burst ${i}` });
    const error = await ann.next();
    expect(error).toMatchObject({ type: 'error', code: 'rate_limited', request: 'message' });
    expect(error['message']).toMatch(/5 messages per second/);
    await ann.quietFor(1000);
    ann.send({ type: 'message', text: 'later' });
    expect(await ann.next()).toMatchObject({ type: 'message', text: 'later' });
    expect(ann.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('closes with 1008 on the tenth refused message within ten seconds, and reads nothing after', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    const bob = await ChatClient.open(port);
    await ann.join('ann');
    await bob.join('bob');
    await ann.nextOfType('presence');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    for (let i = 1; i <= 30; i++) bob.send({ type: 'message', text: `spam ${i}` });
    const closed = await bob.closeCode();
    expect(closed).toEqual({ code: 1008, reason: 'too many messages, too often' });
    const errors = bob.received.filter((message) => message.type === 'error');
    expect(errors).toHaveLength(10);
    expect(errors.every((error) => error['code'] === 'rate_limited')).toBe(true);
    expect(bob.received.filter((message) => message.type === 'message')).toHaveLength(5);
    // The room saw 5 messages and bob leaving, nothing more.
    expect(await ann.nextWhere((message) => message.type === 'notice', 'leave notice')).toMatchObject({ event: 'leave', nick: 'bob' });
    expect(ann.received.filter((message) => message.type === 'message')).toHaveLength(5);
  });

  it('drops a message over 10 KB with too_large and stays connected; exactly 10 KB passes', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    const envelope = JSON.stringify({ type: 'message', text: '' }).length;
    // Multi-byte text: the limit counts UTF-8 bytes, not characters.
    const exact = 'x'.repeat(MAX_MESSAGE_BYTES - envelope - 3) + '\u20ac';
    expect(Buffer.byteLength(JSON.stringify({ type: 'message', text: exact }))).toBe(MAX_MESSAGE_BYTES);
    ann.send({ type: 'message', text: exact + 'y' });
    const error = await ann.next();
    expect(error).toMatchObject({ type: 'error', code: 'too_large' });
    expect(error['message']).toMatch(/10 KB/);
    ann.send({ type: 'message', text: exact });
    expect(await ann.next()).toMatchObject({ type: 'message', text: exact });
  });

  it('refuses a WebSocket message over 16 KiB at the protocol level with 1009', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    ann.send({ type: 'message', text: 'z'.repeat(MAX_FRAME_BYTES) });
    expect((await ann.closeCode()).code).toBe(1009);
  });
});

describe('chat: images', () => {
  const samples: Array<[string, Buffer, string]> = [
    ['PNG', png(1, 1), 'image/png'],
    ['JPEG', JPEG, 'image/jpeg'],
    ['GIF', GIF, 'image/gif'],
    ['WebP', WEBP, 'image/webp'],
  ];

  it.each(samples)(
    'delivers a %s image to every member, the sender included, as one frame with the documented envelope',
    async (_format, bytes, mime) => {
      const port = await start();
      const members = [await ChatClient.open(port), await ChatClient.open(port), await ChatClient.open(port)];
      for (const [index, member] of members.entries()) await member.join(`m${index}`);
      const spy = vi.spyOn(Connection.prototype, 'sendPrepared');
      const before = Date.now();
      // The name says nothing of the type: the server reads the bytes.
      members[1]!.sendImage({ type: 'image', id: 'up-1', name: 'holiday.bin' }, bytes);
      const received = await Promise.all(members.map(async (member) => (await member.imageCount(1))[0]!));
      for (const image of received) {
        expect(image.header).toEqual({
          type: 'image',
          id: expect.stringMatching(/^[0-9a-z]+-[0-9a-z]+$/),
          room: 'general',
          nick: 'm1',
          time: expect.any(Number),
          mime,
          size: bytes.length,
          name: 'holiday.bin',
          clientId: 'up-1',
        });
        expect(image.bytes.equals(bytes)).toBe(true);
      }
      expect(received[0]!.header).toEqual(received[2]!.header);
      expect(received[0]!.header['time']).toBeGreaterThanOrEqual(before - 1000);
      expect(received[0]!.header['time']).toBeLessThanOrEqual(Date.now() + 1000);
      // Published through the hub: one prepared frame, binary, the same object for all three members.
      const frames = spy.mock.calls.map(([frame]) => frame).filter((frame) => frame.binary);
      expect(frames).toHaveLength(3);
      expect(new Set(frames).size).toBe(1);
      // Image ids come from the same source as message ids.
      members[0]!.send({ type: 'message', text: 'nice' });
      expect((await members[0]!.nextOfType('message'))['id']).not.toBe(received[0]!.header['id']);
    },
  );

  it('names an image sent without a name after its type, and strips control and bidi characters from a name', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    ann.sendImage({ type: 'image' }, GIF);
    ann.sendImage({ type: 'image', name: ' evil\u202egnp.exe\u0007 ' }, JPEG);
    const [plain, cleaned] = await ann.imageCount(2);
    expect(plain!.header['name']).toBe('image.gif');
    expect(plain!.header).not.toHaveProperty('clientId');
    expect(cleaned!.header['name']).toBe('evilgnp.exe');
  });

  it('refuses a non-image named like one with unsupported_image, tells nobody else, and stays connected', async () => {
    const port = await start(UNLIMITED);
    const ann = await ChatClient.open(port);
    const bob = await ChatClient.open(port);
    await ann.join('ann');
    await bob.join('bob');
    await ann.nextOfType('presence');
    for (const bytes of [
      Buffer.from('These are my notes, not a picture.\n'),
      Buffer.from('BM\x36\x00\x00\x00', 'latin1'),
      Buffer.alloc(0),
      png(1, 1).subarray(0, 7),
    ]) {
      ann.sendImage({ type: 'image', id: 'notes', name: 'notes.png' }, bytes);
      const error = await ann.next();
      expect(error).toMatchObject({ type: 'error', code: 'unsupported_image', request: 'image', id: 'notes' });
      expect(error['message']).toMatch(/not a PNG, JPEG, GIF or WebP/);
    }
    await bob.quietFor(100);
    expect(bob.images).toEqual([]);
    expect(ann.ws.readyState).toBe(WebSocket.OPEN);
    ann.send({ type: 'message', text: 'still here' });
    expect(await bob.nextOfType('message')).toMatchObject({ text: 'still here' });
  });

  it('refuses an image over 5 MB with too_large and stays connected; exactly 5 MB reaches the room, and text after it too', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    const bob = await ChatClient.open(port);
    await ann.join('ann');
    await bob.join('bob');
    await ann.nextOfType('presence');
    const limit = 5 * 1024 * 1024;
    const big = Buffer.alloc(limit + 1, 0x41);
    png(1, 1).copy(big);
    ann.sendImage({ type: 'image', id: 'big' }, big);
    const error = await ann.next();
    expect(error).toMatchObject({ type: 'error', code: 'too_large', request: 'image', id: 'big' });
    expect(error['message']).toMatch(/5 MB/);
    expect(ann.ws.readyState).toBe(WebSocket.OPEN);

    ann.sendImage({ type: 'image', id: 'exact' }, big.subarray(0, limit));
    ann.send({ type: 'message', text: 'that was big' });
    const [image] = await bob.imageCount(1);
    expect(image!.header).toMatchObject({ clientId: 'exact', size: limit, mime: 'image/png' });
    expect(image!.bytes.equals(big.subarray(0, limit))).toBe(true);
    // The member still receiving the image is not counted as a slow subscriber for what follows it.
    expect(await bob.nextOfType('message')).toMatchObject({ text: 'that was big' });
    expect(bob.sequence.slice(-2)).toEqual([`image:${String(image!.header['id'])}`, 'message']);
    expect(server!.pubsub.stats.dropped).toBe(0);
  });

  it('closes with 1009 for a binary message over the 6 MiB the route reads', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    ann.sendImage({ type: 'image' }, Buffer.alloc(6 * 1024 * 1024, 0x89));
    expect((await ann.closeCode()).code).toBe(1009);
  });

  it('answers an image from a connection in no room with not_joined', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    ann.sendImage({ type: 'image', id: 'early', name: 'a.png' }, png(1, 1));
    expect(await ann.next()).toMatchObject({ type: 'error', code: 'not_joined', request: 'image', id: 'early' });
    await ann.join('ann');
    ann.sendImage({ type: 'image', id: 'late' }, png(1, 1));
    expect((await ann.imageCount(1))[0]!.header['clientId']).toBe('late');
  });

  it('answers malformed binary messages with errors and stays connected', async () => {
    const port = await start(UNLIMITED);
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    const raw = (bytes: Buffer): void => ann.ws.send(bytes, { binary: true });
    raw(Buffer.from([0, 0]));
    expect(await ann.next()).toMatchObject({ type: 'error', code: 'invalid_message' });
    // The header length runs past the end.
    raw(Buffer.concat([Buffer.from([0, 0, 0, 50]), Buffer.from('{"type":"image"}')]));
    expect(await ann.next()).toMatchObject({ type: 'error', code: 'invalid_message' });
    // A header over 2 KB.
    ann.sendImage({ type: 'image', name: 'x'.repeat(3000) }, GIF);
    expect(await ann.next()).toMatchObject({ type: 'error', code: 'invalid_message' });
    raw(Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('{no'), GIF]));
    expect(await ann.next()).toMatchObject({ type: 'error', code: 'invalid_message' });
    ann.sendImage({ name: 'a.gif' }, GIF);
    expect(await ann.next()).toMatchObject({ type: 'error', code: 'invalid_message' });
    ann.sendImage({ type: 'video' }, GIF);
    expect(await ann.next()).toMatchObject({ type: 'error', code: 'unknown_type', request: 'video' });
    ann.sendImage({ type: 'image', id: 'has spaces' }, GIF);
    expect(await ann.next()).toMatchObject({ type: 'error', code: 'invalid_message', request: 'image' });
    ann.sendImage({ type: 'image', id: 'n1', name: 7 }, GIF);
    expect(await ann.next()).toMatchObject({ type: 'error', code: 'invalid_message', request: 'image', id: 'n1' });
    ann.sendImage({ type: 'image', id: 'n2', name: '\u00e9'.repeat(256) }, GIF);
    expect(await ann.next()).toMatchObject({ type: 'error', code: 'invalid_message', request: 'image', id: 'n2' });
    expect(ann.images).toEqual([]);
    ann.sendImage({ type: 'image', id: 'fine', name: '\u00e9'.repeat(255) }, GIF);
    expect((await ann.imageCount(1))[0]!.header['clientId']).toBe('fine');
  });

  it('gives a newcomer the images in the history, in order, each followed by its bytes before the join notice, uncompressed', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    ann.send({ type: 'message', text: 'first' });
    ann.sendImage({ type: 'image', id: 'a', name: 'red.png' }, png(2, 3));
    ann.send({ type: 'message', text: 'between' });
    ann.sendImage({ type: 'image', id: 'b', name: 'dot.gif' }, GIF);
    const broadcast = await ann.imageCount(2);
    await ann.nextWhere((message) => message['text'] === 'between', 'the second message');

    const send = vi.spyOn(Connection.prototype, 'send');
    const bob = await ChatClient.open(port);
    const history = await bob.join('bob');
    expect(history.map((entry) => ('text' in entry ? entry.text : `[${(entry as unknown as Record<string, unknown>)['name'] as string}]`))).toEqual([
      'first',
      '[red.png]',
      'between',
      '[dot.gif]',
    ]);
    // An image's history entry is its header without the type; its bytes follow as the room got them.
    const imageEntries = (history as unknown as Array<Record<string, unknown>>).filter((entry) => 'mime' in entry);
    expect(imageEntries).toEqual(broadcast.map(({ header: { type: _type, ...rest } }) => rest));
    const images = await bob.imageCount(2);
    expect(images.map((image) => image.header)).toEqual(broadcast.map((image) => image.header));
    expect(images[0]!.bytes.equals(png(2, 3))).toBe(true);
    expect(images[1]!.bytes.equals(GIF)).toBe(true);
    const ids = broadcast.map((image) => `image:${String(image.header['id'])}`);
    expect(bob.sequence).toEqual(['joined', 'history', ...ids, 'notice', 'presence']);
    // Sent to the newcomer alone, binary and not deflated.
    const imageSends = send.mock.calls.filter(([, options]) => options?.binary === true);
    expect(imageSends).toHaveLength(2);
    for (const [, options] of imageSends) expect(options).toEqual({ binary: true, compress: false });
  });

  it('keeps only the newest images within the room budget for newcomers, and all of the text', async () => {
    const port = await start({ ...UNLIMITED, history: { imageBytes: 2 * (png(4, 4).length + 200) } });
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    for (const name of ['one', 'two', 'three']) {
      ann.sendImage({ type: 'image', name }, png(4, 4));
      ann.send({ type: 'message', text: `after ${name}` });
    }
    await ann.imageCount(3);
    const bob = await ChatClient.open(port);
    const history = (await bob.join('bob')) as unknown as Array<Record<string, unknown>>;
    expect(history.map((entry) => entry['text'] ?? `[${entry['name'] as string}]`)).toEqual([
      'after one',
      '[two]',
      'after two',
      '[three]',
      'after three',
    ]);
    expect((await bob.imageCount(2)).map((image) => image.header['name'])).toEqual(['two', 'three']);
  });

  it('counts an image as one message toward the message rate, and names the refused upload', async () => {
    const port = await start();
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    // The join was the first message of this second: 4 images pass, the fifth does not.
    for (let i = 1; i <= 5; i++) ann.sendImage({ type: 'image', id: `burst-${i}` }, GIF);
    const error = await ann.nextOfType('error');
    expect(error).toMatchObject({ type: 'error', code: 'rate_limited', request: 'image', id: 'burst-5' });
    expect((await ann.imageCount(4)).map((image) => image.header['clientId'])).toEqual(['burst-1', 'burst-2', 'burst-3', 'burst-4']);
  });

  it('holds each connection to its image byte allowance with rate_limited, and counts refusals toward abuse', async () => {
    const port = await start({ ...UNLIMITED, imageRate: { burstBytes: 1000, bytesPerSecond: 1 } });
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    const image = Buffer.concat([png(1, 1), Buffer.alloc(600 - png(1, 1).length)]);
    ann.sendImage({ type: 'image', id: 'one' }, image);
    expect((await ann.imageCount(1))[0]!.header['clientId']).toBe('one');
    ann.sendImage({ type: 'image', id: 'two' }, image);
    const error = await ann.next();
    expect(error).toMatchObject({ type: 'error', code: 'rate_limited', request: 'image', id: 'two' });
    expect(error['message']).toMatch(/1000 bytes at once/);
    // Small enough for what is left: accepted.
    ann.sendImage({ type: 'image', id: 'three' }, GIF);
    expect((await ann.imageCount(2))[1]!.header['clientId']).toBe('three');
    // Nine more refusals make ten within ten seconds: disconnected, as for the message rate.
    for (let i = 0; i < 9; i++) ann.sendImage({ type: 'image', id: `more${i}` }, image);
    expect(await ann.closeCode()).toEqual({ code: 1008, reason: 'too many messages, too often' });
    expect(ann.received.filter((message) => message['code'] === 'rate_limited')).toHaveLength(10);
  });
});

describe('chat: limits shared with the server', () => {
  it('counts image-allowance refusals and message-rate refusals toward the same abuse limit', async () => {
    const port = await start({ rateLimit: { limit: 1, windowMs: 60_000 }, imageRate: { burstBytes: 100, bytesPerSecond: 1 } });
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    // The join used the one message of the minute: five text messages are refused by the server's rate limit...
    for (let i = 0; i < 5; i++) ann.send({ type: 'message', text: `text ${i}` });
    // ...and five images too (the message rate counts them first: the chat's byte allowance never sees them).
    const image = Buffer.concat([png(1, 1), Buffer.alloc(600 - png(1, 1).length)]);
    for (let i = 0; i < 5; i++) ann.sendImage({ type: 'image', id: `img-${i}` }, image);
    // Ten refusals within ten seconds: disconnected with the chat's own reason.
    expect(await ann.closeCode()).toEqual({ code: 1008, reason: 'too many messages, too often' });
    const errors = ann.received.filter((message) => message['code'] === 'rate_limited');
    expect(errors).toHaveLength(10);
    expect(errors.slice(5).map((error) => error['id'])).toEqual(['img-0', 'img-1', 'img-2', 'img-3', 'img-4']);
  });

  it('an image refused by the byte allowance counts together with refusals by the message rate', async () => {
    const port = await start({ rateLimit: { limit: 6, windowMs: 60_000 }, imageRate: { burstBytes: 100, bytesPerSecond: 1 } });
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    const image = Buffer.concat([png(1, 1), Buffer.alloc(600 - png(1, 1).length)]);
    // Five images within the message rate (6 a minute, the join included), each too big for the 100-byte allowance...
    for (let i = 0; i < 5; i++) ann.sendImage({ type: 'image', id: `big-${i}` }, image);
    // ...then five text messages over the message rate: ten refusals of two kinds.
    for (let i = 0; i < 5; i++) ann.send({ type: 'message', text: `text ${i}` });
    expect(await ann.closeCode()).toEqual({ code: 1008, reason: 'too many messages, too often' });
    const errors = ann.received.filter((message) => message['code'] === 'rate_limited');
    expect(errors.map((error) => error['message'])).toEqual([
      ...Array.from({ length: 5 }, () => expect.stringMatching(/^Images are limited to 100 bytes at once/)),
      ...Array.from({ length: 4 }, () => expect.stringMatching(/^At most 6 messages per 60000 ms/)),
      'Too many messages, too often: disconnected.',
    ]);
  });
});

describe('chat: positions, resumption, resends and typing (protocol 2)', () => {
  it('gives every room message a position, contiguous for a member, continuing the history’s', async () => {
    const port = await start(UNLIMITED);
    const ann = await ChatClient.open(port);
    await ann.join('ann');
    for (const text of ['one', 'two']) ann.send({ type: 'message', text });
    await ann.nextWhere((m) => m.type === 'message' && m['text'] === 'two', 'the second message');
    const bob = await ChatClient.open(port);
    bob.send({ type: 'join', nick: 'bob' });
    const history = await bob.nextOfType('history');
    expect(history['messages']).toHaveLength(2);
    const historyAt = Number(/@(\d+)$/.exec(bob.positions[1]!)?.[1]);
    bob.send({ type: 'message', text: 'three' });
    await bob.nextWhere((m) => m.type === 'message' && m['text'] === 'three', 'its own message');
    // joined, history@N, then the room's messages at N+1, N+2 ...: the join notice, the presence list, the message.
    expect(bob.positions).toEqual([
      'joined',
      `history@${historyAt}`,
      `notice@${historyAt + 1}`,
      `presence@${historyAt + 2}`,
      `message@${historyAt + 3}`,
    ]);
    const annRoom = ann.positions.filter((p) => p.includes('@')).map((p) => Number(p.split('@')[1]));
    expect(annRoom).toEqual(annRoom.map((_, i) => annRoom[0]! + i));
  });

  it('resumes a member from its position: what it missed, once each, then resumed, then live', async () => {
    const port = await start(UNLIMITED);
    const bob = await ChatClient.open(port);
    await bob.join('bob');
    const ann = await ChatClient.open(port);
    ann.send({ type: 'join', nick: 'ann', session: 'ann-page' });
    await ann.nextWhere((m) => m.type === 'presence' && (m['nicks'] as string[]).includes('ann'), 'her presence');
    const last = ann.positions.at(-1)!;
    const epoch = (await ChatClient.epochOf(port)) as string;
    const since = { epoch, offset: Number(last.split('@')[1]) };
    ann.ws.terminate();
    await bob.nextWhere((m) => m.type === 'notice' && m['event'] === 'leave', 'ann leaving');
    for (const text of ['while', 'you', 'were away']) bob.send({ type: 'message', text });
    await bob.nextWhere((m) => m['text'] === 'were away', 'the last one');
    const back = await ChatClient.open(port);
    back.send({ type: 'join', nick: 'ann', session: 'ann-page', since });
    const resumed = await back.nextOfType('resumed');
    expect(resumed).toMatchObject({ room: 'general', replayed: 5 });
    expect(back.positions[6]).toBe(`resumed@${since.offset + 5}`);
    // Exactly what followed `since`, in order and once: her leave, the presence list, the three messages.
    expect(back.sequence.slice(0, 7)).toEqual(['joined', 'notice', 'presence', 'message', 'message', 'message', 'resumed']);
    expect(back.positions.slice(1, 6)).toEqual(
      [1, 2, 3, 4, 5].map((i) => `${['notice', 'presence', 'message', 'message', 'message'][i - 1]}@${since.offset + i}`),
    );
    expect(back.received.filter((m) => m.type === 'message').map((m) => m['text'])).toEqual(['while', 'you', 'were away']);
    // Then live, from the next offset on: her join.
    await back.nextWhere((m) => m.type === 'notice' && m['event'] === 'join', 'her join notice');
    expect(back.positions[7]).toBe(`notice@${since.offset + 6}`);
    expect(back.received.some((m) => m.type === 'history')).toBe(false);
  });

  it('answers a resumption it cannot make (another epoch) with the latest history, flagged missed', async () => {
    const port = await start(UNLIMITED);
    const bob = await ChatClient.open(port);
    await bob.join('bob');
    bob.send({ type: 'message', text: 'kept' });
    await bob.nextOfType('message');
    const ann = await ChatClient.open(port);
    ann.send({ type: 'join', nick: 'ann', since: { epoch: 'an-old-epoch', offset: 7 } });
    const history = await ann.nextOfType('history');
    expect(history).toMatchObject({ type: 'history', room: 'general', missed: true });
    expect((history['messages'] as ChatMessage[]).map((m) => m.text)).toEqual(['kept']);
    expect(ann.received.some((m) => m.type === 'resumed')).toBe(false);
  });

  it('echoes a message’s client id, and answers a resend of that id with duplicate instead of posting it again', async () => {
    const port = await start(UNLIMITED);
    const ann = await ChatClient.open(port);
    const bob = await ChatClient.open(port);
    await ann.join('ann');
    await bob.join('bob');
    ann.send({ type: 'message', text: 'once', id: 'p1-1' });
    expect(await bob.nextOfType('message')).toMatchObject({ text: 'once', clientId: 'p1-1', nick: 'ann' });
    ann.send({ type: 'message', text: 'once', id: 'p1-1' });
    expect(await ann.nextOfType('duplicate')).toEqual({ type: 'duplicate', room: 'general', id: 'p1-1' });
    // The same id from another nickname is another message.
    bob.send({ type: 'message', text: 'mine', id: 'p1-1' });
    expect(await ann.nextWhere((m) => m.type === 'message' && m['nick'] === 'bob', 'bob’s')).toMatchObject({ clientId: 'p1-1' });
    await bob.nextWhere((m) => m.type === 'message' && m['text'] === 'mine', 'his own');
    await bob.quietFor(100);
    expect(bob.received.filter((m) => m.type === 'message' && m['text'] === 'once')).toHaveLength(1);
    ann.send({ type: 'message', text: 'x', id: '<bad id>' });
    expect(await ann.nextOfType('error')).toMatchObject({ code: 'invalid_message', request: 'message' });
  });

  it('shows typing to the others, at most once per two seconds per member, and never in the history', async () => {
    let clock = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => clock);
    const port = await start(UNLIMITED);
    const ann = await ChatClient.open(port);
    const bob = await ChatClient.open(port);
    await ann.join('ann');
    await bob.join('bob');
    bob.send({ type: 'typing' });
    expect(await ann.nextOfType('typing')).toEqual({ type: 'typing', room: 'general', nick: 'bob' });
    bob.send({ type: 'typing' }); // within the interval: dropped
    bob.send({ type: 'ping' });
    await bob.nextOfType('pong');
    clock += 2000;
    bob.send({ type: 'typing' });
    await ann.nextOfType('typing');
    expect(ann.received.filter((m) => m.type === 'typing')).toHaveLength(2);
    const cat = await ChatClient.open(port);
    expect(await cat.join('cat')).toEqual([]);
  });
});

describe('chat: the page', () => {
  it('is listed by /api/apps and served at /chat/ as HTML, with its script and style', async () => {
    const port = await start();
    const apps = (await (await fetch(`http://127.0.0.1:${port}/api/apps`)).json()) as Array<Record<string, unknown>>;
    expect(apps).toContainEqual(expect.objectContaining({ name: 'chat', page: '/chat/', socket: '/chat/ws' }));
    const page = await fetch(`http://127.0.0.1:${port}/chat/`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('chat.js');
    for (const asset of ['chat.js', 'chat.css']) {
      const response = await fetch(`http://127.0.0.1:${port}/chat/${asset}`);
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    }
    // Nothing from outside the machine.
    expect(html).not.toMatch(/https?:\/\//);
  });
});
