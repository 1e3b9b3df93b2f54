import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TopicCursor, type SkippedRange } from '../../src/pubsub/topic-cursor.js';
import type { BrokerMessage } from '../../src/pubsub/broker.js';

const EPOCH = 'e1';
const message = (offset: number): BrokerMessage => ({
  topic: 't',
  data: new TextEncoder().encode(`m${offset}`),
  binary: false,
  epoch: EPOCH,
  offset,
});

type Step = { kind: 'live'; offset: number } | { kind: 'fetch' };

/**
 * Drives a cursor the way a broker node does: live messages in any order,
 * any of them repeated or missing, and now and then a history read for the
 * first hole, from a store that has trimmed everything up to `trimmed`.
 */
function run(total: number, trimmed: number, steps: readonly Step[], maxPending: number) {
  const skipped: SkippedRange[] = [];
  const cursor = new TopicCursor({ epoch: EPOCH, offset: 0 }, { maxPending, onSkip: (range) => skipped.push(range) });
  const out: BrokerMessage[] = [];
  const fetch = (): void => {
    const gap = cursor.gap();
    if (gap === null) return;
    if (gap.from <= trimmed) {
      // History no longer reaches the hole's start: the broker reports it and delivery moves on.
      skipped.push(gap);
      out.push(...cursor.skipTo(gap.to));
      return;
    }
    for (let offset = gap.from; offset <= total; offset++) out.push(...cursor.offer(message(offset)));
  };
  for (const step of steps) {
    if (step.kind === 'live') out.push(...cursor.offer(message(step.offset)));
    else fetch();
  }
  // In the end every hole is read from history or given up: at most one round per hole.
  for (let round = 0; round <= total && cursor.gap() !== null; round++) fetch();
  return { cursor, out, skipped };
}

const scenario = fc.integer({ min: 1, max: 60 }).chain((total) =>
  fc.record({
    total: fc.constant(total),
    trimmed: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: total })),
    maxPending: fc.integer({ min: 1, max: 80 }),
    steps: fc.array(
      fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min: 1, max: total }).map((offset): Step => ({ kind: 'live', offset })) },
        { weight: 1, arbitrary: fc.constant<Step>({ kind: 'fetch' }) },
      ),
      { maxLength: 200 },
    ),
  }),
);

describe('TopicCursor (merging history with live messages)', () => {
  it('delivers in order with no duplicate, and every hole in the output is one it reported', () => {
    fc.assert(
      fc.property(scenario, ({ total, trimmed, steps, maxPending }) => {
        const { cursor, out, skipped } = run(total, trimmed, steps, maxPending);
        const offsets = out.map((m) => m.offset);
        for (const m of out) expect(new TextDecoder().decode(m.data)).toBe(`m${m.offset}`);
        // Walk 1..cursor.offset: each offset is either delivered (in order) or inside a reported skip.
        const skippedSet = new Set<number>();
        for (const range of skipped) for (let o = range.from; o <= range.to; o++) skippedSet.add(o);
        const expected: number[] = [];
        for (let o = 1; o <= cursor.offset; o++) if (!skippedSet.has(o)) expected.push(o);
        expect(offsets).toEqual(expected);
        expect(cursor.pendingCount).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('with the whole history at hand, reports no hole and delivers every offset up to the highest seen', () => {
    fc.assert(
      fc.property(scenario, ({ total, steps }) => {
        const { cursor, out, skipped } = run(total, 0, steps, 10_000);
        const highest = Math.max(0, ...steps.map((s) => (s.kind === 'live' ? s.offset : 0)));
        expect(skipped).toEqual([]);
        expect(cursor.offset).toBeGreaterThanOrEqual(highest);
        expect(out.map((m) => m.offset)).toEqual(Array.from({ length: cursor.offset }, (_, i) => i + 1));
      }),
      { numRuns: 500 },
    );
  });

  it('drops a message it already delivered or holds, and counts it', () => {
    const cursor = new TopicCursor({ epoch: EPOCH, offset: 4 });
    expect(cursor.offer(message(4))).toEqual([]);
    expect(cursor.offer(message(6))).toEqual([]);
    expect(cursor.offer(message(6))).toEqual([]);
    expect(cursor.gap()).toEqual({ from: 5, to: 5 });
    expect(cursor.offer(message(5)).map((m) => m.offset)).toEqual([5, 6]);
    expect(cursor.duplicates).toBe(2);
  });
});
