import { describe, expect, it } from 'vitest';
import { UsageFailure } from '../../src/cli/args.js';
import { firstWord, parseCloseArgs, parseInputLine } from '../../src/cli/slash.js';

describe('parseInputLine', () => {
  it('tells commands from messages, with // escaping a leading slash', () => {
    expect(parseInputLine('hello')).toEqual({ kind: 'message', text: 'hello' });
    expect(parseInputLine('')).toEqual({ kind: 'message', text: '' });
    expect(parseInputLine('/PING  a b ')).toEqual({ kind: 'command', name: 'ping', args: 'a b ' });
    expect(parseInputLine('/quit')).toEqual({ kind: 'command', name: 'quit', args: '' });
    expect(parseInputLine('//etc/hosts')).toEqual({ kind: 'message', text: '/etc/hosts' });
  });
});

describe('firstWord', () => {
  it('splits off the first word and keeps the rest as typed', () => {
    expect(firstWord(' 4000  see  you ')).toEqual(['4000', 'see  you']);
    expect(firstWord('')).toEqual(['', '']);
  });
});

describe('parseCloseArgs', () => {
  it('defaults the code and takes the rest of the line as the reason', () => {
    expect(parseCloseArgs('', 1000)).toEqual({ code: 1000, reason: '' });
    expect(parseCloseArgs('4000 see you', 1000)).toEqual({ code: 4000, reason: 'see you' });
  });

  it('refuses codes that never go on the wire and reasons over 123 bytes', () => {
    for (const code of ['1005', '1006', '1015', '999', '5000', 'abc', '3000.5']) {
      expect(() => parseCloseArgs(code, 1000)).toThrow(UsageFailure);
    }
    expect(() => parseCloseArgs(`1000 ${'é'.repeat(62)}`, 1000)).toThrow(/at most 123 bytes/);
    expect(parseCloseArgs(`1000 ${'x'.repeat(123)}`, 1000).reason).toHaveLength(123);
  });
});
