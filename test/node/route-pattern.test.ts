import { describe, expect, it } from 'vitest';
import { compileRoutePattern, isRoutePattern } from '../../src/node/route-pattern.js';

describe('isRoutePattern', () => {
  it.each([
    ['/room/:id', true],
    ['/files/*', true],
    ['/:a', true],
    ['/chat', false],
    ['/a:b', false],
    ['/files*', false],
    ['/a/*/b', true],
    ['*', false],
  ])('%s -> %s', (path, expected) => expect(isRoutePattern(path)).toBe(expected));
});

describe('compileRoutePattern', () => {
  it('matches one whole, non-empty segment per parameter', () => {
    const pattern = compileRoutePattern('/room/:id/user/:name');
    expect(pattern.match('/room/42/user/ada')).toEqual({ id: '42', name: 'ada' });
    expect(pattern.match('/room/42/user')).toBeNull();
    expect(pattern.match('/room//user/ada')).toBeNull();
    expect(pattern.match('/room/42/user/ada/more')).toBeNull();
    expect(pattern.match('/hall/42/user/ada')).toBeNull();
  });

  it('percent-decodes values, keeping a segment that does not decode as it came', () => {
    const pattern = compileRoutePattern('/room/:id');
    expect(pattern.match('/room/caf%C3%A9')).toEqual({ id: 'café' });
    expect(pattern.match('/room/a%2Fb')).toEqual({ id: 'a/b' });
    expect(pattern.match('/room/%E0%A4%A')).toEqual({ id: '%E0%A4%A' });
  });

  it('a final * matches everything under the prefix, the prefix itself with a slash included', () => {
    const pattern = compileRoutePattern('/files/*');
    expect(pattern.match('/files/a/b.txt')).toEqual({ '*': 'a/b.txt' });
    expect(pattern.match('/files/')).toEqual({ '*': '' });
    expect(pattern.match('/files')).toBeNull();
    expect(pattern.match('/filesystem')).toBeNull();
  });

  it('combines parameters and a prefix', () => {
    expect(compileRoutePattern('/u/:user/*').match('/u/ada/docs/x')).toEqual({ user: 'ada', '*': 'docs/x' });
  });

  it.each(['/a/*/b', '/a/:', '/a/:1x', '/a/:id/:id', '/a/:b-c'])('refuses %s with a UsageError', (source) => {
    expect(() => compileRoutePattern(source)).toThrow(expect.objectContaining({ name: 'UsageError', code: 'WS_ERR_INVALID_ARGUMENT' }));
  });
});
