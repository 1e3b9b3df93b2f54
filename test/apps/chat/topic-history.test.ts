import { describe, expect, it } from 'vitest';
import { historyPolicyOf } from '../../../src/apps/app.js';
import { chatApp, ROOM_TOPIC_HISTORY } from '../../../src/apps/chat/index.js';
import { DEFAULT_HISTORY, historyFor } from '../../../src/pubsub/broker.js';

describe('the chat’s topic history, as a host gives it to its broker', () => {
  it('keeps 200 entries for a week for rooms, nothing for typing, and leaves other topics to the default', () => {
    const policy = historyPolicyOf([chatApp]);
    expect(historyFor(policy, 'chat/general')).toEqual(ROOM_TOPIC_HISTORY);
    expect(ROOM_TOPIC_HISTORY).toEqual({ size: 200, ttlMs: 7 * 24 * 3600_000 });
    expect(historyFor(policy, 'chat-typing/general')).toEqual({ size: 0, ttlMs: 0 });
    expect(historyFor(policy, 'canvas/board')).toEqual(DEFAULT_HISTORY);
  });
});
