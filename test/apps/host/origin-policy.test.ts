import { describe, expect, it } from 'vitest';
import { normalizeAllowedOrigin, originPolicy } from '../../../src/apps/host/origin-policy.js';
import type { UpgradeRequest } from '../../../src/node/upgrade.js';

/** The Origin rules of the apps host, without sockets; server-guards.test.ts runs them over the wire. */

function requestTo(host: string | undefined, extra: Record<string, string> = {}): UpgradeRequest {
  const headers = new Map<string, string>(host === undefined ? [] : [['host', host]]);
  for (const [name, value] of Object.entries(extra)) headers.set(name, value);
  return { headers } as unknown as UpgradeRequest;
}

describe('normalizeAllowedOrigin', () => {
  it('writes origins the way browsers send them: lower-case host, default port dropped', () => {
    expect(normalizeAllowedOrigin('https://Example.COM:443')).toBe('https://example.com');
    expect(normalizeAllowedOrigin('http://example.com:8080/')).toBe('http://example.com:8080');
    expect(normalizeAllowedOrigin('http://[::1]:80')).toBe('http://[::1]');
    expect(normalizeAllowedOrigin('*')).toBe('*');
    expect(normalizeAllowedOrigin('NULL')).toBe('null');
  });

  it('refuses what is not an origin: paths, queries, credentials, no scheme, other schemes', () => {
    for (const text of [
      'https://example.com/app',
      'https://example.com?x',
      'https://u:p@example.com',
      'example.com',
      'ftp://example.com',
      'file:///tmp',
      '',
    ]) {
      expect(normalizeAllowedOrigin(text), text).toBeNull();
    }
  });
});

describe('originPolicy', () => {
  it('accepts the http origin of the Host header, and no Origin at all', () => {
    const allow = originPolicy();
    expect(allow('http://127.0.0.1:8080', requestTo('127.0.0.1:8080'))).toBe(true);
    expect(allow('http://example.com', requestTo('example.com:80'))).toBe(true);
    expect(allow(undefined, requestTo('127.0.0.1:8080'))).toBe(true);
  });

  it('refuses another host, port or scheme, null, garbage, and any Origin when Host is missing or odd', () => {
    const allow = originPolicy();
    expect(allow('http://127.0.0.1:8081', requestTo('127.0.0.1:8080'))).toBe(false);
    expect(allow('https://127.0.0.1:8080', requestTo('127.0.0.1:8080'))).toBe(false);
    expect(allow('http://localhost:8080', requestTo('127.0.0.1:8080'))).toBe(false);
    expect(allow('null', requestTo('127.0.0.1:8080'))).toBe(false);
    expect(allow('garbage', requestTo('127.0.0.1:8080'))).toBe(false);
    expect(allow('http://127.0.0.1:8080', requestTo(undefined))).toBe(false);
    expect(allow('http://a', requestTo('a, b'))).toBe(false);
    expect(allow('http://a', requestTo('a/x'))).toBe(false);
  });

  it('takes https as its own scheme when a TLS proxy says so (X-Forwarded-Proto, Forwarded proto=), and then only https', () => {
    const allow = originPolicy();
    expect(allow('https://example.com', requestTo('example.com', { 'x-forwarded-proto': 'https' }))).toBe(true);
    expect(allow('https://example.com', requestTo('example.com:443', { 'x-forwarded-proto': 'HTTPS, http' }))).toBe(true);
    expect(allow('https://example.com', requestTo('example.com', { forwarded: 'for=192.0.2.1;proto=https;host=example.com' }))).toBe(true);
    expect(allow('http://example.com', requestTo('example.com', { 'x-forwarded-proto': 'https' }))).toBe(false);
    expect(allow('https://example.com', requestTo('example.com'))).toBe(false);
    expect(allow('https://example.com', requestTo('example.com', { 'x-forwarded-proto': 'http' }))).toBe(false);
    expect(allow('https://evil.example', requestTo('example.com', { 'x-forwarded-proto': 'https' }))).toBe(false);
  });

  it('adds listed origins, null when listed, and everything with *', () => {
    const allow = originPolicy(['https://example.com', 'null']);
    expect(allow('https://EXAMPLE.com:443', requestTo('127.0.0.1:8080'))).toBe(true);
    expect(allow('null', requestTo('127.0.0.1:8080'))).toBe(true);
    expect(allow('https://example.org', requestTo('127.0.0.1:8080'))).toBe(false);
    expect(originPolicy(['*'])('null', requestTo(undefined))).toBe(true);
  });
});
