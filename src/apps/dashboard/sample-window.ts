import type { NodeSample } from './wire/protocol.js';

/**
 * The last few minutes of samples of every node that publishes them, as a
 * newly opened page is sent them: per node, its latest `perNode` samples,
 * each later than the one before; a node whose newest sample is older than
 * `spanMs` (it stopped) is forgotten. Pure: time is passed in.
 */
export class SampleWindow {
  private readonly byNode = new Map<string, NodeSample[]>();

  constructor(
    readonly perNode: number,
    readonly spanMs: number,
  ) {
    if (!Number.isInteger(perNode) || perNode < 1) throw new RangeError(`perNode must be a positive integer, got ${perNode}`);
  }

  /** Keep a sample; one not later than its node's latest is a duplicate and is dropped (false). */
  add(sample: NodeSample): boolean {
    let held = this.byNode.get(sample.node);
    if (held === undefined) this.byNode.set(sample.node, (held = []));
    const last = held.at(-1);
    if (last !== undefined && sample.time <= last.time) return false;
    held.push(sample);
    if (held.length > this.perNode) held.splice(0, held.length - this.perNode);
    return true;
  }

  /** Forget the nodes that sent nothing within `spanMs` before `now`; true if one was. */
  prune(now: number): boolean {
    let pruned = false;
    for (const [node, held] of this.byNode) {
      if (now - held.at(-1)!.time > this.spanMs) {
        this.byNode.delete(node);
        pruned = true;
      }
    }
    return pruned;
  }

  /** Nodes held, in the order they were first seen. */
  get nodes(): string[] {
    return [...this.byNode.keys()];
  }

  /** Every sample held, oldest first (for equal times, in node order). */
  all(): NodeSample[] {
    const samples = [...this.byNode.values()].flat();
    // Array.prototype.sort is stable (ES2019): equal times keep node order.
    return samples.sort((a, b) => a.time - b.time);
  }
}
