import { describe, expect, it } from 'vitest';
import { ChatRooms, createIdSource } from '../../../src/apps/chat/rooms.js';

/** Rooms with a fake clock and predictable ids. */
function rooms(options: { historyLength?: number; maxIdleRooms?: number } = {}): ChatRooms<string> {
  let clock = 1000;
  let id = 0;
  return new ChatRooms<string>({ ...options, now: () => clock++, newId: () => `id${++id}` });
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
    if (renamed.ok) expect(renamed.history.map((m) => m.text)).toEqual(['hello']);
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
    expect(history[0]!.text).toBe('m11');
    expect(history[49]!.text).toBe('m60');
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
    expect(chat.history('r2').map((m) => m.text)).toEqual(['in r2']);
    // A room someone is in is never forgotten.
    chat.join('c', 'ann', 'r2');
    for (const name of ['r4', 'r5', 'r6']) {
      chat.join('d', 'bob', name);
      chat.post('d', 'x');
      chat.leave('d');
    }
    expect(chat.history('r2').map((m) => m.text)).toEqual(['in r2']);
  });

  it('makes ids that differ between sources and within one', () => {
    const a = createIdSource();
    const b = createIdSource();
    const ids = new Set([a(), a(), a(), b(), b()]);
    expect(ids.size).toBe(5);
    for (const id of ids) expect(id).toMatch(/^[0-9a-z]{6}-[0-9a-z]+$/);
  });
});
