import { describe, expect, it } from 'vitest';
import type { ChatImage, HistoryEntry } from '../../../src/apps/chat/protocol.js';
import { ChatRooms, createIdSource, type ChatRoomsOptions } from '../../../src/apps/chat/rooms.js';

/** Rooms with a fake clock and predictable ids. */
function rooms(options: Omit<ChatRoomsOptions, 'now' | 'newId'> = {}): ChatRooms<string> {
  let clock = 1000;
  let id = 0;
  return new ChatRooms<string>({ ...options, now: () => clock++, newId: () => `id${++id}` });
}

/** A history entry as a short string: its text, or the image's name in brackets. */
function textOf(entry: HistoryEntry): string {
  return 'text' in entry ? entry.text : `[${entry.name}]`;
}

/** Post an image of `size` bytes named `name`; what is stored for it is `size` bytes of its name's first letter. */
function postImage(chat: ChatRooms<string>, member: string, name: string, size: number) {
  return chat.postImage(member, { name, mime: 'image/png', size }, () => new Uint8Array(size).fill(name.charCodeAt(0)));
}

describe('ChatRooms', () => {
  it('joins general by default and reports presence sorted regardless of case', () => {
    const chat = rooms();
    const first = chat.join('c1', 'bob');
    expect(first).toMatchObject({ ok: true, room: 'general', nick: 'bob', history: [], presence: ['bob'], departure: null });
    chat.join('c2', 'Ann');
    chat.join('c3', 'carl');
    expect(chat.presence('general')).toEqual(['Ann', 'bob', 'carl']);
    expect(chat.membership('c2')).toEqual({ room: 'general', nick: 'Ann' });
  });

  it('keeps a nickname unique per room, case-insensitively, but not across rooms', () => {
    const chat = rooms();
    chat.join('c1', 'Ann');
    expect(chat.join('c2', 'ANN')).toMatchObject({ ok: false, error: { code: 'nick_taken' } });
    expect(chat.membership('c2')).toBeUndefined();
    expect(chat.join('c2', 'ann', 'other')).toMatchObject({ ok: true });
  });

  it('leaves the member where it was when a move is refused', () => {
    const chat = rooms();
    chat.join('c1', 'ann', 'a');
    chat.join('c2', 'bob', 'b');
    expect(chat.join('c1', 'bob', 'b')).toMatchObject({ ok: false, error: { code: 'nick_taken' } });
    expect(chat.membership('c1')).toEqual({ room: 'a', nick: 'ann' });
    expect(chat.join('c1', '!', 'b')).toMatchObject({ ok: false, error: { code: 'invalid_nick' } });
    expect(chat.join('c1', 'ann', 'no room')).toMatchObject({ ok: false, error: { code: 'invalid_room' } });
    expect(chat.presence('a')).toEqual(['ann']);
  });

  it('moves a member to another room, reporting the departure', () => {
    const chat = rooms();
    chat.join('c1', 'ann', 'a');
    chat.join('c2', 'bob', 'a');
    const moved = chat.join('c1', 'ann', 'b');
    expect(moved).toMatchObject({ ok: true, room: 'b', departure: { room: 'a', nick: 'ann', presence: ['bob'] } });
    expect(chat.presence('a')).toEqual(['bob']);
    expect(chat.presence('b')).toEqual(['ann']);
  });

  it('lets a member change its nickname (or its case) in the same room, keeping the room and its history', () => {
    const chat = rooms({ maxIdleRooms: 0 });
    chat.join('c1', 'ann');
    chat.post('c1', 'hello');
    const renamed = chat.join('c1', 'Ann');
    expect(renamed).toMatchObject({ ok: true, nick: 'Ann', departure: { nick: 'ann', presence: [] } });
    if (renamed.ok) expect(renamed.history.map(textOf)).toEqual(['hello']);
    expect(chat.join('c1', 'Ann')).toMatchObject({ ok: false, error: { code: 'already_joined' } });
  });

  it('stamps messages with id, room, sender and time, and keeps the last 50', () => {
    const chat = rooms();
    chat.join('c1', 'ann');
    const posted = chat.post('c1', 'first');
    expect(posted).toEqual({ ok: true, message: { id: 'id1', room: 'general', nick: 'ann', text: 'first', time: expect.any(Number) } });
    for (let i = 2; i <= 60; i++) chat.post('c1', `m${i}`);
    const history = chat.history('general');
    expect(history).toHaveLength(50);
    expect(textOf(history[0]!)).toBe('m11');
    expect(textOf(history[49]!)).toBe('m60');
    const newcomer = chat.join('c2', 'bob');
    expect(newcomer.ok && newcomer.history).toEqual(history);
  });

  it('refuses posts from non-members and blank posts', () => {
    const chat = rooms();
    expect(chat.post('c1', 'hi')).toMatchObject({ ok: false, error: { code: 'not_joined' } });
    chat.join('c1', 'ann');
    expect(chat.post('c1', ' \n\u00a0')).toMatchObject({ ok: false, error: { code: 'empty_message' } });
    expect(chat.history('general')).toEqual([]);
  });

  it('frees the nickname when its member leaves, and reports who is left', () => {
    const chat = rooms();
    chat.join('c1', 'ann');
    chat.join('c2', 'bob');
    expect(chat.leave('c1')).toMatchObject({ room: 'general', nick: 'ann', presence: ['bob'] });
    expect(chat.leave('c1')).toBeNull();
    expect(chat.join('c3', 'ann')).toMatchObject({ ok: true });
  });

  it('forgets an empty room without history, and keeps the history of a bounded number of empty rooms', () => {
    const chat = rooms({ maxIdleRooms: 2 });
    chat.join('c0', 'ann', 'quiet');
    chat.leave('c0');
    expect(chat.roomNames()).toEqual([]);
    for (const name of ['r1', 'r2', 'r3']) {
      chat.join('c', 'ann', name);
      chat.post('c', `in ${name}`);
      chat.leave('c');
    }
    // r1 emptied first and went first.
    expect(chat.roomNames().sort()).toEqual(['r2', 'r3']);
    expect(chat.history('r1')).toEqual([]);
    expect(chat.history('r2').map(textOf)).toEqual(['in r2']);
    // A room someone is in is never forgotten.
    chat.join('c', 'ann', 'r2');
    for (const name of ['r4', 'r5', 'r6']) {
      chat.join('d', 'bob', name);
      chat.post('d', 'x');
      chat.leave('d');
    }
    expect(chat.history('r2').map(textOf)).toEqual(['in r2']);
  });

  it('stamps an image like a message, keeps what the caller stored for it, and hands both to newcomers in order', () => {
    const chat = rooms();
    chat.join('c1', 'ann', 'pics');
    chat.post('c1', 'look');
    let seen: ChatImage | null = null;
    const stored = new Uint8Array([1, 2, 3]);
    const posted = chat.postImage('c1', { name: 'cat.png', mime: 'image/png', size: 3, clientId: 'up1' }, (image) => {
      seen = image;
      return stored;
    });
    const image = { id: 'id2', room: 'pics', nick: 'ann', time: expect.any(Number), mime: 'image/png', size: 3, name: 'cat.png', clientId: 'up1' };
    expect(posted).toEqual({ ok: true, image, stored });
    // The store callback saw the stamped image.
    expect(seen).toEqual(image);
    postImage(chat, 'c1', 'dog.gif', 2);
    chat.post('c1', 'nice');
    const newcomer = chat.join('c2', 'bob', 'pics');
    if (!newcomer.ok) throw new Error('join failed');
    expect(newcomer.history.map(textOf)).toEqual(['look', '[cat.png]', '[dog.gif]', 'nice']);
    expect(newcomer.images.map((bytes) => [...bytes])).toEqual([[1, 2, 3], [0x64, 0x64]]);
    expect(chat.imageBytes('pics')).toBe(5);
  });

  it('refuses images from non-members', () => {
    const chat = rooms();
    let called = false;
    const outcome = chat.postImage('c1', { name: 'x.png', mime: 'image/png', size: 1 }, () => {
      called = true;
      return new Uint8Array(1);
    });
    expect(outcome).toMatchObject({ ok: false, error: { code: 'not_joined' } });
    expect(called).toBe(false);
    expect(chat.imageBytes()).toBe(0);
  });

  it('counts images toward the history length, and stops counting their bytes when they leave it', () => {
    const chat = rooms({ historyLength: 3 });
    chat.join('c1', 'ann');
    postImage(chat, 'c1', 'a.png', 100);
    postImage(chat, 'c1', 'b.png', 10);
    chat.post('c1', 'one');
    chat.post('c1', 'two');
    expect(chat.history('general').map(textOf)).toEqual(['[b.png]', 'one', 'two']);
    expect(chat.imageBytes('general')).toBe(10);
    expect(chat.imageBytes()).toBe(10);
  });

  it('drops the oldest images of a room past its byte budget, keeping its text', () => {
    const chat = rooms({ roomImageBytes: 250 });
    chat.join('c1', 'ann');
    postImage(chat, 'c1', 'a.png', 100);
    chat.post('c1', 'between');
    postImage(chat, 'c1', 'b.png', 100);
    expect(chat.imageBytes('general')).toBe(200);
    postImage(chat, 'c1', 'c.png', 100);
    expect(chat.history('general').map(textOf)).toEqual(['between', '[b.png]', '[c.png]']);
    expect(chat.imageBytes('general')).toBe(200);
    // An image bigger than the whole budget is posted but not kept.
    expect(postImage(chat, 'c1', 'huge.png', 300)).toMatchObject({ ok: true });
    expect(chat.history('general').map(textOf)).toEqual(['between']);
    expect(chat.imageBytes()).toBe(0);
  });

  it('drops the oldest images of any room past the budget of all rooms together', () => {
    const chat = rooms({ roomImageBytes: 1000, totalImageBytes: 250 });
    chat.join('c1', 'ann', 'a');
    chat.join('c2', 'bob', 'b');
    postImage(chat, 'c1', 'a1.png', 100);
    postImage(chat, 'c2', 'b1.png', 100);
    postImage(chat, 'c2', 'b2.png', 100);
    expect(chat.history('a').map(textOf)).toEqual([]);
    expect(chat.history('b').map(textOf)).toEqual(['[b1.png]', '[b2.png]']);
    postImage(chat, 'c1', 'a2.png', 100);
    expect(chat.history('b').map(textOf)).toEqual(['[b2.png]']);
    expect(chat.history('a').map(textOf)).toEqual(['[a2.png]']);
    expect([chat.imageBytes('a'), chat.imageBytes('b'), chat.imageBytes()]).toEqual([100, 100, 200]);
  });

  it('releases the image bytes of a forgotten room', () => {
    const chat = rooms({ maxIdleRooms: 1 });
    chat.join('c1', 'ann', 'one');
    postImage(chat, 'c1', 'a.png', 100);
    chat.join('c1', 'ann', 'two');
    postImage(chat, 'c1', 'b.png', 30);
    chat.leave('c1');
    // "one" emptied first, and went when "two" emptied.
    expect(chat.roomNames()).toEqual(['two']);
    expect(chat.imageBytes()).toBe(30);
  });

  it('makes ids that differ between sources and within one', () => {
    const a = createIdSource();
    const b = createIdSource();
    const ids = new Set([a(), a(), a(), b(), b()]);
    expect(ids.size).toBe(5);
    for (const id of ids) expect(id).toMatch(/^[0-9a-z]{6}-[0-9a-z]+$/);
  });
});
