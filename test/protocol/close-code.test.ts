import { describe, expect, it } from 'vitest';
import { CloseCode, isValidWireCloseCode, MAX_CLOSE_REASON_BYTES } from '../../src/protocol/close-code.js';
import { ProtocolState } from '../../src/protocol/protocol.js';
import { Role } from '../../src/protocol/role.js';
import { closePayload, expectFailedWith, feed, makeProtocol, peerFrame, toHex } from './helpers.js';

/**
 * The rule as stated for this project: 1000-1003, 1007-1011 (RFC 6455), 1012-1014
 * (added to the IANA registry since) and 3000-4999 may be sent; nothing else.
 */
function specValid(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

const VALID = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
const INVALID = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535];

describe('isValidWireCloseCode (RFC 6455 §7.4)', () => {
  it('matches 1000-1003, 1007-1014, 3000-4999 exactly, over all 16-bit codes', () => {
    const mismatches: number[] = [];
    for (let code = 0; code <= 0xffff; code++) if (isValidWireCloseCode(code) !== specValid(code)) mismatches.push(code);
    expect(mismatches).toEqual([]);
  });

  it.each(VALID)('accepts %i', (code) => expect(isValidWireCloseCode(code)).toBe(true));
  it.each(INVALID)('rejects %i', (code) => expect(isValidWireCloseCode(code)).toBe(false));

  it('gives the defined codes their RFC values', () => {
    expect([
      CloseCode.Normal,
      CloseCode.GoingAway,
      CloseCode.ProtocolError,
      CloseCode.UnsupportedData,
      CloseCode.NoStatus,
      CloseCode.Abnormal,
      CloseCode.InvalidPayload,
      CloseCode.PolicyViolation,
      CloseCode.MessageTooBig,
      CloseCode.MandatoryExtension,
      CloseCode.InternalError,
      CloseCode.ServiceRestart,
      CloseCode.TryAgainLater,
      CloseCode.BadGateway,
      CloseCode.TlsHandshake,
    ]).toEqual([1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015]);
    expect(MAX_CLOSE_REASON_BYTES).toBe(123);
  });
});

describe('a received close frame, by code class', () => {
  for (const role of [Role.Server, Role.Client]) {
    describe(`as ${role}`, () => {
      it.each(VALID)('accepts code %i, reports it and echoes it once', (code) => {
        const { protocol, host } = makeProtocol(role);
        feed(protocol, peerFrame(role, { opcode: 0x8, payload: closePayload(code, 'bye') }));
        expect(host.events).toEqual([{ type: 'close', code, reason: 'bye', initiator: 'remote' }]);
        const frames = host.frames();
        expect(frames).toHaveLength(1);
        expect(frames[0]!.opcode).toBe(0x8);
        // §5.5.1: the echo carries the status code received (and no reason).
        expect(toHex(frames[0]!.payload)).toBe(toHex(closePayload(code)));
        expect(protocol.state).toBe(ProtocolState.Closed);
      });

      it.each(INVALID)('fails with 1002 on code %i', (code) => {
        const { protocol, host } = makeProtocol(role);
        feed(protocol, peerFrame(role, { opcode: 0x8, payload: closePayload(code) }));
        expectFailedWith(host, role, 'WS_ERR_INVALID_CLOSE_CODE', 1002);
        expect(host.ofType('close')).toEqual([]);
      });
    });
  }

  it('reports 1005 for an empty close frame and answers with an empty close frame', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    feed(protocol, peerFrame(Role.Server, { opcode: 0x8 }));
    expect(host.events).toEqual([{ type: 'close', code: 1005, reason: '', initiator: 'remote' }]);
    expect(toHex(host.written)).toBe('88 00');
  });
});
