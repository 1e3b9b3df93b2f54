import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { chatApp, roomTopic } from '../../src/apps/chat/index.js';
import type { Broker, BrokerMessage, HistoryResult, PublishOptions, StreamPosition, TopicDiscontinuity } from '../../src/pubsub/broker.js';
import { MemoryBroker } from '../../src/pubsub/memory-broker.js';
import type { Presence } from '../../src/pubsub/presence.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import { useBrowser } from './browser.js';
import { join, messagesWith, say } from './chat-page.js';

/**
 * The chat page across server restarts, protocol 2: its position, its
 * pending messages, the note when resuming is impossible; and the page's
 * typing indicator, unread count and phone layout.
 *
 * The server's hub runs on a broker that outlives the server, as Redis
 * outlives a Sockeye process: a restarted server finds the rooms' topics
 * as they were, so a page can resume. `forget()` plays a Redis restarted
 * without its data (every topic starts a new epoch).
 */
class DurableBroker implements Broker {
  onMessage: ((message: BrokerMessage) => void) | null = null;
  onDiscontinuity: ((event: TopicDiscontinuity) => void) | null = null;
  onError: ((error: Error) => void) | null = null;
  private inner = new MemoryBroker();

  constructor() {
    this.wire();
  }

  get presence(): Presence {
    return this.inner.presence;
  }

  get stats(): MemoryBroker['stats'] {
    return this.inner.stats;
  }

  publish(topic: string, data: Uint8Array, options?: PublishOptions): Promise<StreamPosition> {
    return this.inner.publish(topic, data, options);
  }

  subscribe(topic: string): Promise<StreamPosition> {
    return this.inner.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    this.inner.unsubscribe(topic);
  }

  history(topic: string, since: StreamPosition): Promise<HistoryResult> {
    return this.inner.history(topic, since);
  }

  position(topic: string): Promise<StreamPosition> {
    return this.inner.position(topic);
  }

  /** The store outlives the server that closes its hub. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Lose every topic and member, as a Redis restarted without persistence. Only while no server runs. */
  forget(): void {
    this.inner = new MemoryBroker();
    this.wire();
  }

  private wire(): void {
    this.inner.onMessage = (message) => this.onMessage?.(message);
    this.inner.onDiscontinuity = (event) => this.onDiscontinuity?.(event);
  }
}

const store = new DurableBroker();
const hub = new PubSub({ broker: store });
const web = useBrowser({ apps: [chatApp], server: { pubsub: hub } });

const WAIT = 5000;
/** A restart takes the page's backoff (up to 5 s) to notice. */
const RECONNECT_WAIT = 12_000;

async function openChat(viewport?: { width: number; height: number }): Promise<Page> {
  const page = await web.newPage();
  if (viewport !== undefined) await page.setViewportSize(viewport);
  await page.goto(web.url('/chat/'));
  await page.locator('#status[data-state="open"]').waitFor({ timeout: WAIT });
  return page;
}

async function restartWhile(action: () => Promise<void>, options: { forget?: boolean } = {}): Promise<void> {
  await web.stopServer();
  if (options.forget === true) store.forget();
  await action();
  await web.startServer();
}

describe('chat page: recovery and pending messages', () => {
  it('keeps what is typed during an outage as pending, sends it after resuming, marks it delivered, and shows everything once', async () => {
    const ann = await openChat();
    const bob = await openChat();
    await join(ann, 'ann', 'pending-room', WAIT);
    await join(bob, 'bob', 'pending-room', WAIT);
    await say(ann, 'before');
    await messagesWith(bob, 'before').waitFor({ timeout: WAIT });

    await restartWhile(async () => {
      await ann.locator('#status[data-state="reconnecting"]').waitFor({ timeout: WAIT });
      await say(ann, 'typed while away');
      const item = messagesWith(ann, 'typed while away');
      await item.waitFor({ timeout: WAIT });
      expect(await item.getAttribute('class')).toMatch(/\bpending\b/);
      expect(await item.locator('.status-line').textContent()).toMatch(/^pending/);
      // Published while both pages are away: they must get it from the room's history when they resume.
      await hub.publish(
        roomTopic('pending-room'),
        JSON.stringify({ type: 'message', id: 'x-1', room: 'pending-room', nick: 'cat', text: 'sent meanwhile', time: Date.now() }),
      );
    });

    for (const page of [ann, bob]) await page.locator('#status[data-state="open"]').waitFor({ timeout: RECONNECT_WAIT });
    await ann.locator('#messages li.message.delivered', { hasText: 'typed while away' }).waitFor({ timeout: WAIT });
    await messagesWith(bob, 'typed while away').waitFor({ timeout: WAIT });
    await messagesWith(ann, 'sent meanwhile').waitFor({ timeout: WAIT });
    await messagesWith(bob, 'sent meanwhile').waitFor({ timeout: WAIT });
    expect(await ann.locator('#messages li.pending').count()).toBe(0);
    // Both resumed from their positions (the server replayed what they missed), rather than starting over from the history.
    for (const page of [ann, bob])
      await page.locator('#messages li.system .text', { hasText: /^Back: \d+ messages? sent while you were away/ }).waitFor({ timeout: WAIT });
    // Once each, on both pages, and no note of missing messages: the resumption was complete.
    for (const page of [ann, bob]) {
      for (const text of ['before', 'typed while away', 'sent meanwhile']) expect(await messagesWith(page, text).count()).toBe(1);
      expect(await page.locator('#messages li.system.missed').count()).toBe(0);
    }
    // In the order the room has them.
    const order = await bob.locator('#messages li.message .text').allTextContents();
    expect(order.indexOf('sent meanwhile')).toBeLessThan(order.indexOf('typed while away'));
  });

  it('shows a note that messages may be missing when it cannot resume (the store lost its data), then carries on', async () => {
    const ann = await openChat();
    await join(ann, 'ann', 'epoch-room', WAIT);
    await say(ann, 'old');
    await ann.locator('#messages li.message.delivered', { hasText: 'old' }).waitFor({ timeout: WAIT });

    await restartWhile(
      async () => {
        await ann.locator('#status[data-state="reconnecting"]').waitFor({ timeout: WAIT });
        await say(ann, 'after the loss');
        await ann.locator('#messages li.pending', { hasText: 'after the loss' }).waitFor({ timeout: WAIT });
      },
      { forget: true },
    );

    const note = ann.locator('#messages li.system.missed');
    await note.waitFor({ timeout: RECONNECT_WAIT });
    expect(await note.textContent()).toMatch(/Some messages may be missing/);
    expect(await note.isVisible()).toBe(true);
    await ann.locator('#messages li.message.delivered', { hasText: 'after the loss' }).waitFor({ timeout: WAIT });
    expect(await messagesWith(ann, 'after the loss').count()).toBe(1);
    expect(await messagesWith(ann, 'old').count()).toBe(1);
  });
});

describe('chat page: leaving and coming back', () => {
  it('gives a page that left a room and joins it again the room’s history, not only what it missed', async () => {
    const ann = await openChat();
    const bob = await openChat();
    await join(ann, 'ann', 'again-room', WAIT);
    await join(bob, 'bob', 'again-room', WAIT);
    await say(ann, 'first');
    await messagesWith(bob, 'first').waitFor({ timeout: WAIT });
    await ann.locator('#leave').click();
    await ann.locator('#join').waitFor({ state: 'visible', timeout: WAIT });
    await say(bob, 'second');
    await messagesWith(bob, 'second').waitFor({ timeout: WAIT });
    await join(ann, 'ann', 'again-room', WAIT);
    await messagesWith(ann, 'second').waitFor({ timeout: WAIT });
    expect(await ann.locator('#messages li.message .text').allTextContents()).toEqual(['first', 'second']);
    expect(await ann.locator('#messages li.system.missed').count()).toBe(0);
  });
});

describe('chat page: typing, unread count, phone layout', () => {
  it('shows who is typing, and clears it when their message arrives', async () => {
    const ann = await openChat();
    const bob = await openChat();
    await join(ann, 'ann', 'typing-room', WAIT);
    await join(bob, 'bob', 'typing-room', WAIT);
    await bob.locator('#text').fill('hel');
    await ann.locator('#typing', { hasText: 'bob is typing…' }).waitFor({ timeout: WAIT });
    expect(await bob.locator('#typing').textContent()).toBe('');
    await bob.locator('#text').press('Enter');
    await messagesWith(ann, 'hel').waitFor({ timeout: WAIT });
    expect(await ann.locator('#typing').textContent()).toBe('');
  });

  it('counts messages from others in the title while the tab is hidden, and clears the count when it is shown', async () => {
    const ann = await openChat();
    const bob = await openChat();
    await join(ann, 'ann', 'unread-room', WAIT);
    await join(bob, 'bob', 'unread-room', WAIT);
    const setHidden = (hidden: boolean): Promise<void> =>
      ann.evaluate((value) => {
        const doc = (globalThis as unknown as { document: { dispatchEvent(e: unknown): void } }).document;
        Object.defineProperty(doc, 'hidden', { configurable: true, get: () => value });
        doc.dispatchEvent(new (globalThis as unknown as { Event: new (type: string) => unknown }).Event('visibilitychange'));
      }, hidden);
    await setHidden(true);
    await say(bob, 'one');
    await say(bob, 'two');
    await messagesWith(ann, 'two').waitFor({ timeout: WAIT });
    expect(await ann.title()).toBe('(2) #unread-room · Chat · Sockeye');
    await say(ann, 'mine'); // one's own messages are not unread
    await messagesWith(ann, 'mine').waitFor({ timeout: WAIT });
    expect(await ann.title()).toBe('(2) #unread-room · Chat · Sockeye');
    await setHidden(false);
    expect(await ann.title()).toBe('#unread-room · Chat · Sockeye');
  });

  it('puts Leave at the top of a phone-sized screen, away from Send at the bottom', async () => {
    const page = await openChat({ width: 360, height: 640 });
    await join(page, 'ann', 'phone-room', WAIT);
    const leave = (await page.locator('#leave').boundingBox())!;
    const send = (await page.locator('#composer button[type="submit"]').boundingBox())!;
    expect(leave.y + leave.height).toBeLessThan(send.y - 300);
    expect(leave.x + leave.width).toBeLessThanOrEqual(360);
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await page.locator('#leave').click();
    await page.locator('#join').waitFor({ state: 'visible', timeout: WAIT });
  });
});
