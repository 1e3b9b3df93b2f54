import { describe, expect, it } from 'vitest';
import { MemoryPresence } from '../../src/pubsub/memory-presence.js';
import type { PresenceEvent } from '../../src/pubsub/presence.js';

describe('MemoryPresence.claim', () => {
  it('claims a free id (with a join event), refuses a held one, accepts the holder again, and frees it on leave', async () => {
    const presence = new MemoryPresence();
    const events: PresenceEvent[] = [];
    presence.watch('room', (event) => events.push(event));
    expect(await presence.claim('room', 'ann', { by: 1 })).toBe(true);
    expect(await presence.claim('room', 'ann', { by: 2 })).toBe(false);
    expect(await presence.claim('room', 'ann', { by: 1 })).toBe(true);
    expect(await presence.claim('other', 'ann', { by: 2 })).toBe(true); // ids are per topic
    expect(await presence.members('room')).toEqual([{ id: 'ann', data: { by: 1 } }]);
    await presence.leave('room', 'ann');
    expect(await presence.claim('room', 'ann', { by: 2 })).toBe(true);
    await presence.leave('room', 'ann', { by: 1 }); // not the holder's data: no effect
    expect(await presence.members('room')).toEqual([{ id: 'ann', data: { by: 2 } }]);
    expect(events.map((e) => (e.type === 'join' ? `join ${e.member.id} ${JSON.stringify(e.member.data)}` : `leave ${e.id}`))).toEqual([
      'join ann {"by":1}',
      'leave ann',
      'join ann {"by":2}',
    ]);
  });
});
