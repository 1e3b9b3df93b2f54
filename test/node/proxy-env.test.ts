import { describe, expect, it } from 'vitest';
import { HandshakeError } from '../../src/node/errors.js';
import { bypassesProxy, parseProxyUrl, selectProxy, type ProxyEnvironment } from '../../src/node/proxy-env.js';

/** The environment is always passed in: nothing here reads or changes process.env. */
const pick = (target: string, env: ProxyEnvironment, proxy?: string | false): string | null => {
  const selection = selectProxy(new URL(target), { env, proxy });
  return selection === null ? null : `${selection.source} ${selection.endpoint.display}`;
};

describe('selectProxy: which variable, as curl reads them', () => {
  it('uses https_proxy / HTTPS_PROXY for wss:// and not for ws://', () => {
    expect(pick('wss://example.com/', { HTTPS_PROXY: 'http://p:3128' })).toBe('HTTPS_PROXY http://p:3128');
    expect(pick('wss://example.com/', { https_proxy: 'http://p:3128' })).toBe('https_proxy http://p:3128');
    expect(pick('ws://example.com/', { HTTPS_PROXY: 'http://p:3128', https_proxy: 'http://q:1' })).toBeNull();
  });

  it('uses http_proxy for ws://, and ignores upper-case HTTP_PROXY like curl (httpoxy)', () => {
    expect(pick('ws://example.com/', { http_proxy: 'http://p:8080' })).toBe('http_proxy http://p:8080');
    expect(pick('ws://example.com/', { HTTP_PROXY: 'http://p:8080' })).toBeNull();
    expect(pick('wss://example.com/', { http_proxy: 'http://p:8080' })).toBeNull();
  });

  it('prefers the lower-case name over the upper-case one', () => {
    expect(pick('wss://example.com/', { HTTPS_PROXY: 'http://upper:1', https_proxy: 'http://lower:2' })).toBe('https_proxy http://lower:2');
    expect(pick('ws://example.com/', { ALL_PROXY: 'http://upper:1', all_proxy: 'http://lower:2' })).toBe('all_proxy http://lower:2');
  });

  it('takes ws_proxy / wss_proxy first, then the http(s) ones, then ALL_PROXY', () => {
    const env = {
      ws_proxy: 'http://ws:1',
      http_proxy: 'http://h:2',
      WSS_PROXY: 'http://wss:3',
      HTTPS_PROXY: 'http://hs:4',
      ALL_PROXY: 'socks5h://all:5',
    };
    expect(pick('ws://example.com/', env)).toBe('ws_proxy http://ws:1');
    expect(pick('wss://example.com/', env)).toBe('WSS_PROXY http://wss:3');
    expect(pick('ws://example.com/', { http_proxy: 'http://h:2', ALL_PROXY: 'socks5h://all:5' })).toBe('http_proxy http://h:2');
    expect(pick('wss://example.com/', { http_proxy: 'http://h:2', ALL_PROXY: 'socks5h://all:5' })).toBe('ALL_PROXY socks5h://all:5');
    expect(pick('ws://example.com/', { all_proxy: 'socks5://all:5' })).toBe('all_proxy socks5://all:5');
  });

  it('treats an empty variable as unset and falls through to the next name', () => {
    expect(pick('wss://example.com/', { https_proxy: '', HTTPS_PROXY: 'http://p:1' })).toBe('HTTPS_PROXY http://p:1');
    expect(pick('wss://example.com/', { https_proxy: '  ', ALL_PROXY: '' })).toBeNull();
  });

  it('maps http:// and https:// targets like ws:// and wss://', () => {
    expect(pick('http://example.com/', { http_proxy: 'p:1' })).toBe('http_proxy http://p:1');
    expect(pick('https://example.com/', { HTTPS_PROXY: 'p:1' })).toBe('HTTPS_PROXY http://p:1');
  });

  it('an explicit proxy wins over the environment; false or "" means direct whatever the environment says', () => {
    const env = { HTTPS_PROXY: 'http://env:1', ALL_PROXY: 'http://env:2' };
    expect(pick('wss://example.com/', env, 'socks5://opt:9')).toBe('option socks5://opt:9');
    expect(pick('wss://example.com/', env, false)).toBeNull();
    expect(pick('wss://example.com/', env, '')).toBeNull();
    expect(pick('wss://example.com/', { NO_PROXY: '*', ...env }, false)).toBeNull();
  });

  it('applies NO_PROXY to an explicit proxy too (curl: NO_PROXY overrides -x)', () => {
    expect(pick('ws://direct.example.com/', { NO_PROXY: 'direct.example.com' }, 'http://p:1')).toBeNull();
    expect(pick('ws://somewhere.example.com/', { NO_PROXY: 'direct.example.com' }, 'http://p:1')).toBe('option http://p:1');
  });

  it('bypasses through NO_PROXY / no_proxy (lower case first)', () => {
    const proxy = { HTTPS_PROXY: 'http://p:1' };
    expect(pick('wss://api.internal/', { ...proxy, NO_PROXY: '.internal' })).toBeNull();
    expect(pick('wss://api.internal/', { ...proxy, no_proxy: 'internal' })).toBeNull();
    expect(pick('wss://api.internal/', { ...proxy, no_proxy: 'other', NO_PROXY: 'internal' })).toBe('HTTPS_PROXY http://p:1');
    expect(pick('wss://api.example/', { ...proxy, NO_PROXY: '*' })).toBeNull();
    expect(pick('wss://api.example/', { ...proxy, NO_PROXY: '' })).toBe('HTTPS_PROXY http://p:1');
  });

  it('compares NO_PROXY ports with the URL default port when the URL has none', () => {
    const proxy = { HTTPS_PROXY: 'http://p:1', http_proxy: 'http://p:1' };
    expect(pick('wss://h.example/', { ...proxy, NO_PROXY: 'h.example:443' })).toBeNull();
    expect(pick('ws://h.example/', { ...proxy, NO_PROXY: 'h.example:443' })).toBe('http_proxy http://p:1');
    expect(pick('ws://h.example:8080/', { ...proxy, NO_PROXY: 'h.example:8080' })).toBeNull();
  });
});

describe('bypassesProxy: the NO_PROXY list', () => {
  it('matches the host itself and its subdomains, never a name that merely ends the same', () => {
    for (const entry of ['example.com', '.example.com', '*.example.com', 'example.com.', 'EXAMPLE.com']) {
      expect(bypassesProxy('example.com', 80, entry), entry).toBe(true);
      expect(bypassesProxy('www.example.com', 80, entry), entry).toBe(true);
      expect(bypassesProxy('a.b.example.com', 80, entry), entry).toBe(true);
      expect(bypassesProxy('notexample.com', 80, entry), entry).toBe(false);
      expect(bypassesProxy('example.com.org', 80, entry), entry).toBe(false);
    }
    // curl's CURLOPT_NOPROXY example.
    expect(bypassesProxy('www.example.com', 80, 'ample.com')).toBe(false);
  });

  it('ignores a trailing dot on the host name', () => {
    expect(bypassesProxy('www.example.com.', 80, 'example.com')).toBe(true);
  });

  it('splits on commas and blanks, skipping empty entries', () => {
    expect(bypassesProxy('b.test', 80, ' a.test ,, b.test')).toBe(true);
    expect(bypassesProxy('c.test', 80, 'a.test b.test\tc.test')).toBe(true);
    expect(bypassesProxy('d.test', 80, 'a.test, b.test ,c.test')).toBe(false);
  });

  it('takes "*" as every host, alone or in a list', () => {
    expect(bypassesProxy('anything.example', 1, '*')).toBe(true);
    expect(bypassesProxy('anything.example', 1, 'localhost,*')).toBe(true);
  });

  it('matches an entry with a port only on that port', () => {
    expect(bypassesProxy('h.example', 8080, 'h.example:8080')).toBe(true);
    expect(bypassesProxy('h.example', 8081, 'h.example:8080')).toBe(false);
    expect(bypassesProxy('sub.h.example', 8080, '.h.example:8080')).toBe(true);
    expect(bypassesProxy('10.1.2.3', 443, '10.1.2.3:443')).toBe(true);
    expect(bypassesProxy('10.1.2.3', 80, '10.1.2.3:443')).toBe(false);
    expect(bypassesProxy('[::1]', 9000, '[::1]:9000')).toBe(true);
    expect(bypassesProxy('[::1]', 9001, '[::1]:9000')).toBe(false);
  });

  it('matches IP addresses exactly or by CIDR block, never against names', () => {
    expect(bypassesProxy('127.0.0.1', 80, '127.0.0.1')).toBe(true);
    expect(bypassesProxy('127.0.0.1', 80, 'localhost')).toBe(false);
    expect(bypassesProxy('192.168.7.9', 80, '192.168.0.0/16')).toBe(true);
    expect(bypassesProxy('192.169.7.9', 80, '192.168.0.0/16')).toBe(false);
    expect(bypassesProxy('10.0.0.1', 80, '0.0.0.0/0')).toBe(true);
    expect(bypassesProxy('10.0.0.1', 80, '10.0.0.0/33')).toBe(false);
    expect(bypassesProxy('[::1]', 80, '::1')).toBe(true);
    expect(bypassesProxy('[::1]', 80, '[::1]')).toBe(true);
    expect(bypassesProxy('[2001:db8::5]', 80, '2001:db8::/32')).toBe(true);
    expect(bypassesProxy('[2001:db9::5]', 80, '2001:db8::/32')).toBe(false);
    expect(bypassesProxy('[::1]', 80, '127.0.0.1')).toBe(false);
  });
});

describe('parseProxyUrl', () => {
  it('reads scheme, host, port and percent-decoded credentials, and never shows the password', () => {
    const proxy = parseProxyUrl('http://al%40ice:p%3Ass%20w@Proxy.Example:3128');
    expect(proxy).toEqual({
      kind: 'http',
      host: 'proxy.example',
      port: 3128,
      username: 'al@ice',
      password: 'p:ss w',
      display: 'http://al%40ice@proxy.example:3128',
    });
    expect(proxy.display).not.toContain('p%3Ass');
  });

  it('takes a URL without a scheme as http://, and port 1080 when none is given (curl)', () => {
    expect(parseProxyUrl('proxy.example:8080')).toMatchObject({ kind: 'http', host: 'proxy.example', port: 8080 });
    expect(parseProxyUrl('proxy.example')).toMatchObject({ kind: 'http', port: 1080 });
    expect(parseProxyUrl('socks5h://proxy.example')).toMatchObject({ kind: 'socks5h', port: 1080 });
  });

  it('keeps an explicit port equal to the http default', () => {
    expect(parseProxyUrl('http://proxy.example:80')).toMatchObject({ port: 80 });
    expect(parseProxyUrl('HTTP://proxy.example:80/')).toMatchObject({ kind: 'http', port: 80 });
  });

  it('reads IPv6 proxies', () => {
    expect(parseProxyUrl('socks5://[::1]:1081')).toMatchObject({ kind: 'socks5', host: '::1', port: 1081, display: 'socks5://[::1]:1081' });
  });

  it('refuses schemes it cannot speak, and URLs with a path, naming the variable but not the password', () => {
    for (const raw of ['https://p:1', 'socks4://p:1', 'ftp://p:1', 'http://u:secret@p:1/path', 'http://u:secret@:1']) {
      let caught: unknown;
      try {
        parseProxyUrl(raw, 'HTTPS_PROXY');
      } catch (error) {
        caught = error;
      }
      expect(caught, raw).toBeInstanceOf(HandshakeError);
      expect((caught as HandshakeError).code).toBe('WS_ERR_INVALID_URL');
      expect((caught as HandshakeError).message).toContain('HTTPS_PROXY');
      expect((caught as HandshakeError).message).not.toContain('secret');
    }
  });
});
