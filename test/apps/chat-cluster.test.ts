import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { chatTopicHistory, createChatApp } from '../../src/apps/chat/index.js';
import { AppServer } from '../../src/apps/host/server.js';
import { DEFAULT_HISTORY } from '../../src/pubsub/broker.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import { RedisBroker } from '../../src/pubsub/redis-broker.js';
import { useRedis } from '../pubsub/redis-server.js';
import { readEnvelope } from './chat/samples.js';

/**
 * The chat on several nodes: separate AppServers in this process, each
 * with its own hub on its own RedisBroker, all on one private redis-server
 * started for this file. Clients (`ws`) speak PROTOCOL.md; whichever node
 * they reach, they see one chat.
 */

const WAIT_MS = 8000;
/** Short, so that a dead node's members expire within a test. */
const PRESENCE_TTL_MS = 1200;

const redis = useRedis();
const nodes: Node[] = [];
const clients: Client[] = [];

interface Node {
  server: AppServer;
  broker: RedisBroker;
  port: number;
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate();
  await Promise.all(nodes.splice(0).map((node) => node.server.close()));
  await redis.command('FLUSHALL');
});

async function startNode(): Promise<Node> {
  const broker = await RedisBroker.connect({
    url: redis.url,
    presenceTtlMs: PRESENCE_TTL_MS,
    history: (topic) => chatTopicHistory(topic) ?? DEFAULT_HISTORY,
  });
  const server = new AppServer({
    apps: [createChatApp({ rateLimit: { limit: 1000 } })],
    logLevel: 'silent',
    pubsub: new PubSub({ broker }),
    websocket: { heartbeat: false },
  });
  const node = { server, broker, port: (await server.listen(0)).port };
  nodes.push(node);
  return node;
}

type Message = Record<string, unknown> & { type: string };

/** A `ws` chat client that keeps what it receives (text as JSON, images by header) and reads it through a cursor. */
class Client {
  readonly received: Message[] = [];
  private cursor = 0;
  private wake: (() => void) | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) {
        this.received.push({ ...(readEnvelope(data).header as Message), binary: true });
      } else {
        this.received.push(JSON.parse(String(data)) as Message);
      }
      this.wake?.();
    });
  }

  static async open(node: Node): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${node.port}/chat/ws`);
    const client = new Client(ws);
    clients.push(client);
    await once(ws, 'open');
    return client;
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  async next(predicate: (message: Message) => boolean, what: string): Promise<Message> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      while (this.cursor < this.received.length) {
        const message = this.received[this.cursor++]!;
        if (predicate(message)) return message;
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

  /** Join and wait until the join is done (history or resumed, then its own presence). */
  async join(nick: string, extra: Record<string, unknown> = {}): Promise<Message> {
    this.send({ type: 'join', nick, ...extra });
    const first = await this.next((m) => m.type === 'joined' || m.type === 'error', 'the join’s answer');
    if (first.type === 'error') return first;
    const caught = await this.next((m) => m.type === 'history' || m.type === 'resumed', 'history or resumed');
    await this.next((m) => m.type === 'presence' && (m['nicks'] as string[]).includes(nick), 'its presence');
    return caught;
  }

  /** The room messages received so far (those with a position). */
  roomMessages(): Message[] {
    return this.received.filter((m) => typeof m['offset'] === 'number' && m.type !== 'history' && m.type !== 'resumed');
  }

  lastPosition(): { epoch: string; offset: number } {
    const last = this.roomMessages().at(-1)!;
    return { epoch: last['epoch'] as string, offset: last['offset'] as number };
  }
}

const texts = (messages: Message[]): unknown[] => messages.filter((m) => m.type === 'message').map((m) => m['text']);

describe('chat on three nodes', () => {
  it('delivers messages, notices and presence lists to every node, once each, in one order', async () => {
    const [a, b, c] = [await startNode(), await startNode(), await startNode()];
    const ann = await Client.open(a);
    const bob = await Client.open(b);
    const cat = await Client.open(c);
    await ann.join('ann');
    await bob.join('bob');
    await cat.join('cat');
    await ann.next((m) => m.type === 'presence' && (m['nicks'] as string[]).length === 3, 'three present');
    expect((await bob.next((m) => m.type === 'presence' && (m['nicks'] as string[]).length === 3, 'three')).nicks).toEqual(['ann', 'bob', 'cat']);
    for (let i = 0; i < 5; i++) {
      ann.send({ type: 'message', text: `a${i}` });
      bob.send({ type: 'message', text: `b${i}` });
      cat.send({ type: 'message', text: `c${i}` });
    }
    for (const client of [ann, bob, cat]) await client.next(() => texts(client.received).length === 15, '15 messages');
    // From cat's join on, all three saw the same room messages at the same offsets.
    const from = cat.roomMessages()[0]!['offset'] as number;
    const seen = (client: Client): string[] =>
      client
        .roomMessages()
        .filter((m) => (m['offset'] as number) >= from)
        .map((m) => `${String(m['offset'])}:${m.type}:${String(m['text'] ?? m['nick'] ?? '')}`);
    expect(seen(ann)).toEqual(seen(cat));
    expect(seen(bob)).toEqual(seen(cat));
    const offsets = seen(cat).map((entry) => Number(entry.split(':')[0]));
    expect(offsets).toEqual(offsets.map((_, i) => from + i)); // no hole, no duplicate
    // Each one's join notice once, everywhere after it.
    expect(ann.received.filter((m) => m.type === 'notice' && m['nick'] === 'cat')).toHaveLength(1);
    // A leave on one node reaches the others, with the new list.
    cat.send({ type: 'leave' });
    await ann.next((m) => m.type === 'notice' && m['event'] === 'leave' && m['nick'] === 'cat', 'cat leaving');
    expect((await bob.next((m) => m.type === 'presence' && (m['nicks'] as string[]).length === 2, 'two left')).nicks).toEqual(['ann', 'bob']);
  });

  it('gives a nickname to exactly one of the clients racing for it from two nodes', async () => {
    const [a, b] = [await startNode(), await startNode()];
    const racers = await Promise.all(Array.from({ length: 8 }, (_, i) => Client.open(i % 2 === 0 ? a : b)));
    for (const nick of ['zed', 'Yan', 'xi']) {
      const answers = await Promise.all(
        racers.map(async (client) => {
          client.send({ type: 'join', nick, room: nick.toLowerCase() === 'zed' ? 'general' : `room-${nick.toLowerCase()}` });
          return client.next((m) => m.type === 'joined' || (m.type === 'error' && m['request'] === 'join'), 'the join’s answer');
        }),
      );
      expect(answers.filter((m) => m.type === 'joined')).toHaveLength(1);
      expect(answers.filter((m) => m['code'] === 'nick_taken')).toHaveLength(racers.length - 1);
    }
  });

  it('keeps the history when every node restarts (new servers, hubs and brokers on the same Redis)', async () => {
    const first = await startNode();
    const ann = await Client.open(first);
    await ann.join('ann');
    for (let i = 1; i <= 60; i++) ann.send({ type: 'message', text: `m${i}` });
    await ann.next((m) => m.type === 'message' && m['text'] === 'm60', 'the last message');
    ann.ws.terminate();
    await Promise.all(nodes.splice(0).map((node) => node.server.close()));
    const [a, b] = [await startNode(), await startNode()];
    const bob = await Client.open(b);
    const history = await bob.join('bob');
    expect(texts((history['messages'] as Message[]).map((m) => ({ ...m, type: 'message' })))).toEqual(
      Array.from({ length: 50 }, (_, i) => `m${i + 11}`),
    );
    // And the nickname ann is free again (released by the node that closed).
    const again = await Client.open(a);
    expect((await again.join('ann')).type).toBe('history');
  });

  it('resumes a client that moves to another node: exactly what it missed, then live', async () => {
    const [a, b, c] = [await startNode(), await startNode(), await startNode()];
    const bob = await Client.open(c);
    await bob.join('bob');
    const ann = await Client.open(a);
    await ann.join('ann', { session: 'ann-page' });
    bob.send({ type: 'message', text: 'before' });
    await ann.next((m) => m['text'] === 'before', 'before');
    const since = ann.lastPosition();
    ann.ws.terminate();
    await bob.next((m) => m.type === 'notice' && m['event'] === 'leave' && m['nick'] === 'ann', 'ann leaving');
    for (const text of ['one', 'two', 'three']) bob.send({ type: 'message', text });
    await bob.next((m) => m['text'] === 'three', 'three');
    const back = await Client.open(b);
    const resumed = await back.join('ann', { session: 'ann-page', since });
    expect(resumed).toMatchObject({ type: 'resumed', epoch: since.epoch });
    bob.send({ type: 'message', text: 'live' });
    await back.next((m) => m['text'] === 'live', 'live');
    const offsets = back.roomMessages().map((m) => m['offset'] as number);
    expect(offsets).toEqual(offsets.map((_, i) => since.offset + 1 + i)); // from since+1, no hole, no duplicate
    expect(texts(back.received)).toEqual(['one', 'two', 'three', 'live']);
    expect(back.received.some((m) => m.type === 'history')).toBe(false);
  });

  it('lets a client whose node died take its nickname back on another node, and announces members of a dead node once', async () => {
    const [a, b, c] = [await startNode(), await startNode(), await startNode()];
    const watcher = await Client.open(c);
    await watcher.join('watcher');
    const ann = await Client.open(a);
    await ann.join('ann', { session: 'ann-page' });
    const dan = await Client.open(a);
    await dan.join('dan');
    const since = ann.lastPosition();
    // Node a dies: no goodbye reaches Redis, its presence is no longer refreshed.
    a.broker.disconnectAbruptly();
    ann.ws.terminate();
    dan.ws.terminate();
    // ann comes back through node b at once, before her entry expired: same session, her nickname is hers.
    const back = await Client.open(b);
    expect((await back.join('ann', { session: 'ann-page', since })).type).toBe('resumed');
    // Someone else cannot have it meanwhile.
    const other = await Client.open(c);
    expect(await other.join('ann')).toMatchObject({ type: 'error', code: 'nick_taken' });
    // dan's entry expires; one node announces it, once.
    await watcher.next((m) => m.type === 'notice' && m['event'] === 'leave' && m['nick'] === 'dan', 'dan expiring');
    const list = await watcher.next((m) => m.type === 'presence' && !(m['nicks'] as string[]).includes('dan'), 'a list without dan');
    expect(list['nicks']).toEqual(['ann', 'watcher']);
    await new Promise((resolve) => setTimeout(resolve, PRESENCE_TTL_MS));
    expect(watcher.received.filter((m) => m.type === 'notice' && m['event'] === 'leave' && m['nick'] === 'dan')).toHaveLength(1);
    // ann, refreshed by node b, did not expire.
    expect(watcher.received.filter((m) => m.type === 'notice' && m['event'] === 'leave' && m['nick'] === 'ann')).toHaveLength(0);
  });

  it('answers a resumption from a lost epoch (Redis lost its data) with the latest history, flagged missed', async () => {
    const [a, b] = [await startNode(), await startNode()];
    const ann = await Client.open(a);
    await ann.join('ann');
    ann.send({ type: 'message', text: 'old' });
    await ann.next((m) => m['text'] === 'old', 'old');
    const since = ann.lastPosition();
    ann.ws.terminate();
    await redis.command('FLUSHALL');
    const bob = await Client.open(b);
    await bob.join('bob');
    bob.send({ type: 'message', text: 'new' });
    await bob.next((m) => m['text'] === 'new', 'new');
    const back = await Client.open(a);
    const caught = await back.join('ann', { since });
    expect(caught).toMatchObject({ type: 'history', missed: true });
    expect(caught['epoch']).not.toBe(since.epoch);
    expect((caught['messages'] as Message[]).map((m) => m['text'])).toEqual(['new']);
  });

  it('posts a message resent on another node once: the resend is answered duplicate', async () => {
    const [a, b] = [await startNode(), await startNode()];
    const ann = await Client.open(a);
    await ann.join('ann', { session: 's1' });
    ann.send({ type: 'message', text: 'hello', id: 'pg-1' });
    await ann.next((m) => m['clientId'] === 'pg-1', 'the echo');
    ann.ws.terminate();
    const back = await Client.open(b);
    await back.join('ann', { session: 's1' });
    back.send({ type: 'message', text: 'hello', id: 'pg-1' });
    expect(await back.next((m) => m.type === 'duplicate', 'duplicate')).toEqual({ type: 'duplicate', room: 'general', id: 'pg-1' });
    const cat = await Client.open(a);
    const history = await cat.join('cat');
    expect((history['messages'] as Message[]).filter((m) => m['clientId'] === 'pg-1')).toHaveLength(1);
  });
});
