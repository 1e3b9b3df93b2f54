import { describe, expect, it } from 'vitest';
import { SentIds } from '../../../src/apps/chat/sent-ids.js';
import { MemoryPresence } from '../../../src/pubsub/memory-presence.js';

describe('SentIds', () => {
  it('says first once per id and sender in a room, across instances sharing one presence', async () => {
    const presence = new MemoryPresence();
    const [a, b] = [new SentIds(presence), new SentIds(presence)];
    try {
      expect(await a.first('r', 'ann', 'p-1')).toBe(true);
      expect(await a.first('r', 'ann', 'p-1')).toBe(false); // the same process again
      expect(await b.first('r', 'ann', 'p-1')).toBe(false); // another process
      expect(await b.first('r', 'bob', 'p-1')).toBe(true); // another sender
      expect(await b.first('other', 'ann', 'p-1')).toBe(true); // another room
      await a.forget('r', 'ann', 'p-1'); // its message could not be stored
      expect(await b.first('r', 'ann', 'p-1')).toBe(true);
    } finally {
      a.stop();
      b.stop();
    }
  });

  it('remembers ids for a bounded time and a bounded count, then lets them go', async () => {
    let now = 0;
    const presence = new MemoryPresence();
    const ids = new SentIds(presence, { windowMs: 1000, maxIds: 3, now: () => now });
    try {
      for (let i = 0; i < 5; i++) expect(await ids.first('r', 'ann', `m${i}`)).toBe(true);
      expect(ids.size).toBe(3);
      expect((await presence.members('chat-sent/r')).map((m) => m.id)).toEqual(['ann/m2', 'ann/m3', 'ann/m4']);
      expect(await ids.first('r', 'ann', 'm0')).toBe(true); // forgotten by count
      expect(await ids.first('r', 'ann', 'm4')).toBe(false); // still remembered
      now += 1000;
      ids.expire();
      expect(ids.size).toBe(0);
      expect(await presence.members('chat-sent/r')).toEqual([]);
      expect(await ids.first('r', 'ann', 'm4')).toBe(true); // forgotten by time
    } finally {
      ids.stop();
    }
  });
});
