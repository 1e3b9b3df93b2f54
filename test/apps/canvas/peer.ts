import { decodeServerMessage, type ServerMessage } from '../../../src/apps/canvas/wire/codec.js';
import type { Peer } from '../../../src/apps/canvas/fanout.js';
import type { PreparedFrame } from '../../../src/protocol/protocol.js';

/**
 * A stand-in for a connection in the fan-out tests: it keeps the frames it
 * is given, and its `bufferedAmount` is whatever the test says, so a slow
 * reader is one assignment away.
 */
export class FakePeer implements Peer {
  bufferedAmount = 0;
  readonly frames: PreparedFrame[] = [];
  private read = 0;

  sendPrepared(frame: PreparedFrame): void {
    this.frames.push(frame);
  }

  /** The messages received since the last call, decoded. */
  take(): ServerMessage[] {
    const fresh = this.frames.slice(this.read);
    this.read = this.frames.length;
    return fresh.map((frame) => {
      if (!frame.binary) throw new Error('the canvas sends binary frames only');
      const decoded = decodeServerMessage(frame.payload);
      if (!decoded.ok) throw new Error(`undecodable frame: ${decoded.error.message}`);
      return decoded.message;
    });
  }
}
