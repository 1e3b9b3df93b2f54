import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { chatApp } from '../../src/apps/chat/index.js';
import { png } from '../apps/chat/samples.js';
import { useBrowser } from './browser.js';

/** The chat page in Chromium: two pages talking, the refusals and limits it shows, and surviving a server restart. */

const web = useBrowser({ apps: [chatApp] });

/** Every wait in this file is bounded by this (ms), except where a test says otherwise. */
const WAIT = 5000;

async function openChat(): Promise<Page> {
  const page = await web.newPage();
  await page.goto(web.url('/chat/'));
  await page.locator('#status[data-state="open"]').waitFor({ timeout: WAIT });
  return page;
}

async function join(page: Page, nick: string, room = 'general'): Promise<void> {
  await page.locator('#nick').fill(nick);
  await page.locator('#room').fill(room);
  await page.locator('#join-button').click();
  await page.locator('#room-view').waitFor({ state: 'visible', timeout: WAIT });
  await expectText(page, '#room-title', `#${room}`);
}

async function say(page: Page, text: string): Promise<void> {
  await page.locator('#text').fill(text);
  await page.locator('#text').press('Enter');
}

/** Wait until the element's text is exactly `text`. */
async function expectText(page: Page, selector: string, text: string): Promise<void> {
  await page.waitForFunction(
    ([sel, want]) =>
      (globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } }).document.querySelector(sel!)
        ?.textContent === want,
    [selector, text],
    { timeout: WAIT },
  );
}

async function presence(page: Page): Promise<string[]> {
  return page.locator('#presence li').allTextContents();
}

/** Wait for the presence list to be exactly `nicks`. */
async function expectPresence(page: Page, nicks: string[]): Promise<void> {
  const deadline = Date.now() + WAIT;
  while (JSON.stringify(await presence(page)) !== JSON.stringify(nicks)) {
    if (Date.now() > deadline) throw new Error(`presence is ${JSON.stringify(await presence(page))}, expected ${JSON.stringify(nicks)}`);
    await page.waitForTimeout(25);
  }
}

/** The chat messages on the page, as [nick, text, own]. */
async function messages(page: Page): Promise<Array<[string, string, boolean]>> {
  const items = page.locator('#messages li.message');
  const count = await items.count();
  const out: Array<[string, string, boolean]> = [];
  for (let i = 0; i < count; i++) {
    const item = items.nth(i);
    out.push([
      (await item.locator('.nick').textContent()) ?? '',
      (await item.locator('.text').textContent()) ?? '',
      (await item.getAttribute('class'))!.includes('own'),
    ]);
  }
  return out;
}

/** The first shown image of the list, once loaded: its natural size and its src. */
async function shownImage(page: Page, nth = 0): Promise<{ width: number; height: number; src: string }> {
  const selector = '#messages li.image:not(.pending) img';
  await page.waitForFunction(
    ([sel, index]) => {
      const images = (
        globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<{ complete: boolean; naturalWidth: number }> } }
      ).document.querySelectorAll(sel as string);
      const image = images[index as number];
      return image !== undefined && image.complete && image.naturalWidth > 0;
    },
    [selector, nth],
    { timeout: WAIT },
  );
  return page.evaluate(
    ([sel, index]) => {
      const image = (
        globalThis as unknown as {
          document: { querySelectorAll(s: string): ArrayLike<{ naturalWidth: number; naturalHeight: number; src: string }> };
        }
      ).document.querySelectorAll(sel as string)[index as number]!;
      return { width: image.naturalWidth, height: image.naturalHeight, src: image.src };
    },
    [selector, nth] as const,
  );
}

/** Whether an image loads from `url` in the page (a revoked blob: URL does not). */
async function loads(page: Page, url: string): Promise<boolean | 'no answer'> {
  return page.evaluate(
    ([src, wait]) =>
      new Promise<boolean | 'no answer'>((resolve) => {
        const image = new (globalThis as unknown as { Image: new () => { src: string; onload: () => void; onerror: () => void } }).Image();
        image.onload = () => resolve(true);
        image.onerror = () => resolve(false);
        setTimeout(() => resolve('no answer'), wait);
        image.src = src;
      }),
    [url, WAIT] as const,
  );
}

function systemLine(page: Page, text: string): ReturnType<Page['locator']> {
  return page.locator('#messages li.system .text', { hasText: text });
}

describe('chat page', () => {
  it('lets two pages chat: Enter sends, the sender and time are shown, own messages are marked, markup stays text', async () => {
    const ann = await openChat();
    const bob = await openChat();
    await join(ann, 'ann');
    await join(bob, 'bob');

    const hostile = '<img src=x onerror="window.pwned=1"><b>bold?</b>';
    await say(ann, hostile);
    await bob.locator('#messages li.message').first().waitFor({ timeout: WAIT });
    expect(await messages(bob)).toEqual([['ann', hostile, false]]);
    await ann.locator('#messages li.message').first().waitFor({ timeout: WAIT });
    expect(await messages(ann)).toEqual([['ann', hostile, true]]);
    // Nothing of the text became an element, and the input was cleared for the next message.
    expect(await bob.locator('#messages img, #messages b').count()).toBe(0);
    expect(await bob.evaluate('window.pwned')).toBeUndefined();
    expect(await ann.locator('#text').inputValue()).toBe('');

    const time = bob.locator('#messages li.message time').first();
    expect(await time.textContent()).toMatch(/\d{1,2}.\d{2}/);
    expect(Math.abs(Date.parse((await time.getAttribute('datetime'))!) - Date.now())).toBeLessThan(60_000);

    // The reply, typed with a line break (Shift+Enter) before Enter sends it.
    await bob.locator('#text').fill('hello');
    await bob.locator('#text').press('Shift+Enter');
    await bob.locator('#text').pressSequentially('ann');
    await bob.locator('#text').press('Enter');
    await ann.locator('#messages li.message').nth(1).waitFor({ timeout: WAIT });
    expect((await messages(ann))[1]).toEqual(['bob', 'hello\nann', false]);
    expect((await messages(bob))[1]).toEqual(['bob', 'hello\nann', true]);
  });

  it('refuses a nickname taken in the room and lets the user pick another', async () => {
    const ann = await openChat();
    const other = await openChat();
    await join(ann, 'Ann');
    await other.locator('#nick').fill('ann');
    await other.locator('#join-button').click();
    await other.locator('#join-error[data-code="nick_taken"]').waitFor({ timeout: WAIT });
    expect(await other.locator('#join-error').textContent()).toMatch(/taken/);
    expect(await other.locator('#room-view').isHidden()).toBe(true);
    expect(await other.locator('#join').isVisible()).toBe(true);
    await join(other, 'ann2');
    await expectPresence(other, ['Ann', 'ann2']);
  });

  it('shows join and leave notices and keeps the presence list current', async () => {
    const ann = await openChat();
    const bob = await openChat();
    await join(ann, 'ann');
    await expectPresence(ann, ['ann']);
    expect(await ann.locator('#presence li.own').textContent()).toBe('ann');

    await join(bob, 'bob');
    await systemLine(ann, 'bob joined').waitFor({ timeout: WAIT });
    await expectPresence(ann, ['ann', 'bob']);
    await expectText(ann, '#count', '2');

    await bob.locator('#leave').click();
    await bob.locator('#join').waitFor({ state: 'visible', timeout: WAIT });
    await systemLine(ann, 'bob left').waitFor({ timeout: WAIT });
    await expectPresence(ann, ['ann']);

    // Closing the page counts as leaving too.
    const carl = await openChat();
    await join(carl, 'carl');
    await expectPresence(ann, ['ann', 'carl']);
    await carl.close();
    await systemLine(ann, 'carl left').waitFor({ timeout: WAIT });
    await expectPresence(ann, ['ann']);
  });

  it('shows the rate limit error when messages come faster than 5 a second', async () => {
    const ann = await openChat();
    await join(ann, 'ann');
    // Eight sends in one go through the page's own form: the joining message plus 4 pass, the rest are refused.
    await ann.evaluate(`(() => {
      const text = document.getElementById('text');
      const form = document.getElementById('composer');
      for (let i = 1; i <= 8; i++) { text.value = 'fast ' + i; form.requestSubmit(); }
    })()`);
    const error = ann.locator('#chat-error[data-code="rate_limited"]');
    await error.waitFor({ timeout: WAIT });
    expect(await error.textContent()).toMatch(/5 messages per second/);
    // Refused, not closed: the page stays connected and can talk again a second later.
    expect(await ann.locator('#status').getAttribute('data-state')).toBe('open');
    const shown = (await messages(ann)).length;
    expect(shown).toBeGreaterThanOrEqual(4);
    expect(shown).toBeLessThan(8);
    await ann.waitForTimeout(1100);
    await say(ann, 'calm again');
    await ann.locator('#messages li.message .text', { hasText: 'calm again' }).waitFor({ timeout: WAIT });
  });

  it('reconnects by itself after a server restart and rejoins its room with its nickname', async () => {
    const ann = await openChat();
    const bob = await openChat();
    await join(ann, 'ann', 'kitchen');
    await join(bob, 'bob', 'kitchen');
    await say(ann, 'before the restart');
    await bob.locator('#messages li.message').first().waitFor({ timeout: WAIT });

    await web.stopServer();
    await ann.locator('#status[data-state="reconnecting"]').waitFor({ timeout: WAIT });
    expect(await ann.locator('#status').textContent()).toBe('reconnecting…');
    await systemLine(ann, 'Connection lost').waitFor({ timeout: WAIT });

    await web.startServer();
    for (const page of [ann, bob]) {
      await page.locator('#status[data-state="open"]').waitFor({ timeout: 10_000 });
      expect(await page.locator('#status').textContent()).toBe('connected');
    }
    // Both are back in #kitchen under their names, on a server that knew nothing of them.
    await expectPresence(ann, ['ann', 'bob']);
    await expectPresence(bob, ['ann', 'bob']);
    await systemLine(bob, 'Reconnected; rejoining #kitchen as bob').waitFor({ timeout: WAIT });
    // The new server's in-memory rooms start a new epoch: the pages could not resume, and say so.
    for (const page of [ann, bob]) await systemLine(page, 'Some messages may be missing').waitFor({ timeout: WAIT });
    await say(bob, 'after the restart');
    await ann.locator('#messages li.message .text', { hasText: 'after the restart' }).waitFor({ timeout: WAIT });
    // What was on screen stays.
    expect((await messages(ann))[0]).toEqual(['ann', 'before the restart', true]);
  });

  it('shows the error and the join form when its nickname was taken while it was away', async () => {
    const ann = await openChat();
    await join(ann, 'ann');
    web.allowConsoleErrors(/WebSocket/);
    const pageConnections = [...web.server!.websockets.connections];
    expect(pageConnections).toHaveLength(1);
    // Cut the page's connection, and take its nickname before the page's first retry (at least 125 ms later).
    const intruder = new WebSocket(`ws://127.0.0.1:${web.port}/chat/ws`);
    try {
      await new Promise((resolve, reject) => {
        intruder.once('open', resolve);
        intruder.once('error', reject);
      });
      const joined = new Promise<void>((resolve) => intruder.on('message', (data) => String(data).includes('"joined"') && resolve()));
      const gone = new Promise((resolve) => pageConnections[0]!.once('close', resolve));
      pageConnections[0]!.terminate();
      // The chat's own close handler ran before this listener: the nickname is free now.
      await gone;
      intruder.send(JSON.stringify({ type: 'join', nick: 'ann' }));
      await joined;

      await ann.locator('#join-error[data-code="nick_taken"]').waitFor({ timeout: WAIT });
      expect(await ann.locator('#join').isVisible()).toBe(true);
      expect(await ann.locator('#room-view').isHidden()).toBe(true);
      expect(await ann.locator('#status').getAttribute('data-state')).toBe('open');
      // The user picks another name and is back.
      await join(ann, 'ann_again');
      await expectPresence(ann, ['ann', 'ann_again']);
    } finally {
      intruder.terminate();
    }
  });

  it('fits a phone-sized screen: no sideways scrolling, people above the messages, the composer in view', async () => {
    const page = await web.newPage();
    await page.setViewportSize({ width: 360, height: 640 });
    await page.goto(web.url('/chat/'));
    await page.locator('#status[data-state="open"]').waitFor({ timeout: WAIT });
    await join(page, 'ann');
    await say(page, 'x'.repeat(300));
    await page.locator('#messages li.message').first().waitFor({ timeout: WAIT });
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    const people = (await page.locator('.people').boundingBox())!;
    const list = (await page.locator('#messages').boundingBox())!;
    const composer = (await page.locator('#composer').boundingBox())!;
    expect(people.y + people.height).toBeLessThanOrEqual(list.y + 1);
    expect(list.y + list.height).toBeLessThanOrEqual(composer.y + 1);
    expect(composer.y + composer.height).toBeLessThanOrEqual(640);
    expect(composer.x + composer.width).toBeLessThanOrEqual(360);
  });

  it('sends an image chosen in one page to the others, shown inline from a blob: URL at its natural size, also to a newcomer', async () => {
    const ann = await openChat();
    const bob = await openChat();
    await join(ann, 'ann');
    await join(bob, 'bob');
    await ann.locator('#image-input').setInputFiles({ name: 'red.png', mimeType: 'image/png', buffer: png(3, 2) });

    const atBob = await shownImage(bob);
    expect(atBob.width).toBe(3);
    expect(atBob.height).toBe(2);
    expect(atBob.src).toMatch(/^blob:http:\/\/127\.0\.0\.1:\d+\//);
    const item = bob.locator('#messages li.image').first();
    expect(await item.locator('.nick').textContent()).toBe('ann');
    expect(await item.locator('figcaption').textContent()).toMatch(/^red\.png · \d+ bytes$/);
    expect(Math.abs(Date.parse((await item.locator('time').getAttribute('datetime'))!) - Date.now())).toBeLessThan(60_000);
    expect(await item.getAttribute('class')).not.toMatch(/own/);

    // The sender's preview made way for the image as the room got it, marked as its own.
    const atAnn = await shownImage(ann);
    expect([atAnn.width, atAnn.height]).toEqual([3, 2]);
    await ann.locator('#messages li.pending').waitFor({ state: 'detached', timeout: WAIT });
    expect(await ann.locator('#messages li.image.own').count()).toBe(1);

    // A page that joins later gets it with the room's history.
    const carl = await openChat();
    await join(carl, 'carl');
    const atCarl = await shownImage(carl);
    expect([atCarl.width, atCarl.height]).toEqual([3, 2]);
    expect(await carl.locator('#messages li.image .nick').textContent()).toBe('ann');
    // The envelope both ways was the server's own module, compiled.
    expect(web.requests).toEqual(expect.arrayContaining([web.url('/chat/wire/envelope.js'), web.url('/chat/wire/protocol.js')]));

    // Leaving the room's messages behind (another room) revokes the blob: URL.
    await bob.locator('#leave').click();
    await join(bob, 'bob', 'elsewhere');
    expect(await bob.locator('#messages li.image').count()).toBe(0);
    web.allowConsoleErrors(/ERR_FILE_NOT_FOUND/);
    expect(await loads(bob, atBob.src)).toBe(false);
    // (The same probe on a URL still in use: it loads.)
    expect(await loads(carl, atCarl.src)).toBe(true);
  });

  it('refuses a renamed non-image with the server error, and a file over 5 MB before sending it', async () => {
    const ann = await openChat();
    const bob = await openChat();
    await join(ann, 'ann');
    await join(bob, 'bob');
    await ann
      .locator('#image-input')
      .setInputFiles({ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('Shopping list: eggs, flour, milk.\n') });
    const error = ann.locator('#chat-error[data-code="unsupported_image"]');
    await error.waitFor({ timeout: WAIT });
    expect(await error.textContent()).toMatch(/not a PNG, JPEG, GIF or WebP image/);
    // Its preview is gone, nobody got anything, and the page is still connected.
    await ann.locator('#messages li.pending').waitFor({ state: 'detached', timeout: WAIT });
    expect(await ann.locator('#messages li.image').count()).toBe(0);
    expect(await ann.locator('#status').getAttribute('data-state')).toBe('open');

    const big = Buffer.alloc(5 * 1024 * 1024 + 1);
    png(1, 1).copy(big);
    await ann.locator('#image-input').setInputFiles({ name: 'huge.png', mimeType: 'image/png', buffer: big });
    await ann.locator('#chat-error[data-code="too_large"]').waitFor({ timeout: WAIT });
    expect(await ann.locator('#chat-error').textContent()).toMatch(/at most 5 MB; huge\.png has 5 MB/);
    expect(await ann.locator('#messages li.image').count()).toBe(0);

    // The text chat is unharmed, and nothing image-like reached bob.
    await say(ann, 'sorry, wrong file');
    await bob.locator('#messages li.message .text', { hasText: 'wrong file' }).waitFor({ timeout: WAIT });
    expect(await bob.locator('#messages li.image').count()).toBe(0);
  });

  it('sends an image dropped on the room', async () => {
    const ann = await openChat();
    const bob = await openChat();
    await join(ann, 'ann');
    await join(bob, 'bob');
    await ann.evaluate(
      (bytes) => {
        const page = globalThis as unknown as {
          document: { getElementById(id: string): { dispatchEvent(event: unknown): boolean } };
          DataTransfer: new () => { items: { add(file: unknown): void } };
          File: new (parts: unknown[], name: string, options: { type: string }) => unknown;
          DragEvent: new (type: string, init: { dataTransfer: unknown; bubbles: boolean; cancelable: boolean }) => unknown;
        };
        const transfer = new page.DataTransfer();
        transfer.items.add(new page.File([Uint8Array.from(bytes)], 'dropped.png', { type: 'image/png' }));
        page.document
          .getElementById('messages')
          .dispatchEvent(new page.DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
      },
      [...png(4, 5)],
    );
    const atBob = await shownImage(bob);
    expect([atBob.width, atBob.height]).toEqual([4, 5]);
    expect(await bob.locator('#messages li.image figcaption').textContent()).toMatch(/^dropped\.png/);
  });
});
