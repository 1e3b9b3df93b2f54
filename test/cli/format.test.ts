import { describe, expect, it } from 'vitest';
import {
  describeBinary,
  describeClose,
  describeControlPayload,
  escapeControls,
  formatMessage,
  formatWireFrame,
  oneLine,
} from '../../src/cli/format.js';
import { Opcode } from '../../src/protocol/opcode.js';

describe('formatMessage', () => {
  it('indents continuation lines under the marker', () => {
    expect(formatMessage('<', 'a\nb', false, { json: false })).toBe('< a\n  b');
    expect(formatMessage('[#1 x] <', 'a\nb', false, { json: false })).toBe('[#1 x] < a\n         b');
  });

  it('pretty-prints JSON only when asked and only when it parses', () => {
    expect(formatMessage('<', '{"a":[1]}', false, { json: true })).toBe('< {\n    "a": [\n      1\n    ]\n  }');
    expect(formatMessage('<', '{"a":[1]}', false, { json: false })).toBe('< {"a":[1]}');
    expect(formatMessage('<', '{oops', false, { json: true })).toBe('< {oops');
  });

  it('summarises binary messages', () => {
    expect(formatMessage('>', Buffer.from('hi'), true, { json: true })).toBe('> binary 2 bytes: 68 69 |hi|');
  });
});

describe('describeBinary', () => {
  it('shows at most 32 bytes, then how many more there are', () => {
    const bytes = Buffer.alloc(40, 0x41);
    expect(describeBinary(bytes)).toBe(`binary 40 bytes: ${Array(32).fill('41').join(' ')} |${'A'.repeat(32)}| ... (+8 bytes)`);
    expect(describeBinary(new Uint8Array([0]))).toBe('binary 1 byte: 00 |.|');
    expect(describeBinary(new Uint8Array(0))).toBe('binary 0 bytes');
  });
});

describe('escapeControls', () => {
  it('makes terminal control characters visible, keeping tab and newline', () => {
    expect(escapeControls('a\x1b[2Jb\r\tc\nd\x7f\x9b')).toBe('a\\x1b[2Jb\\r\tc\nd\\x7f\\x9b');
  });
});

describe('describeControlPayload', () => {
  it('quotes printable text, shows bytes otherwise, and nothing when empty', () => {
    expect(describeControlPayload(Buffer.from('beat'))).toBe(' "beat"');
    expect(describeControlPayload(Buffer.from([0xff, 0]))).toBe(' binary 2 bytes: ff 00 |..|');
    expect(describeControlPayload(Buffer.alloc(0))).toBe('');
  });
});

describe('formatWireFrame', () => {
  it('writes every header field in wire order', () => {
    const line = formatWireFrame({
      direction: 'out',
      opcode: Opcode.Text,
      fin: false,
      rsv1: true,
      rsv2: false,
      rsv3: true,
      masked: true,
      length: 70000,
    });
    expect(line).toBe('>> text         fin=0 rsv1=1 rsv2=0 rsv3=1 masked=1 len=70000');
    const incoming = formatWireFrame({
      direction: 'in',
      opcode: Opcode.Continuation,
      fin: true,
      rsv1: false,
      rsv2: false,
      rsv3: false,
      masked: false,
      length: 0,
    });
    expect(incoming).toBe('<< continuation fin=1 rsv1=0 rsv2=0 rsv3=0 masked=0 len=0');
  });
});

describe('describeClose and oneLine', () => {
  it('names standard codes and quotes reasons', () => {
    expect(describeClose(1000, '')).toBe('1000 normal closure');
    expect(describeClose(4000, 'bye "now"')).toBe('4000 "bye \\"now\\""');
  });

  it('flattens and shortens text for error lines', () => {
    expect(oneLine('a\n  b\r\nc')).toBe('a b c');
    expect(oneLine('x'.repeat(10), 8)).toBe('xxxxx...');
  });
});
