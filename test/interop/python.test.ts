import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Connection } from '../../src/index.js';
import { EchoServer, FRAGMENTS, Inbox, MATRIX, payload, sha256, splitPieces, WAIT_MS, withTimeout } from './helpers.js';

/**
 * Interoperability with Python's `websockets` (asyncio API), both
 * directions: its client against Sockeye's server, Sockeye's client against
 * its server. One Python process (python/peer.py) serves the whole file: it
 * runs the echo servers and drives client connections on command.
 */

const PYTHON = '/usr/bin/python3';
const PEER_SCRIPT = fileURLToPath(new URL('./python/peer.py', import.meta.url));
const BIG = 65536;

type Reply = Record<string, unknown> & { ok: boolean; error?: string };
type PeerEvent = Record<string, unknown> & { event: string; path: string };

/** The Python process: JSON lines in, JSON lines out, every wait bounded. */
class PythonPeer {
  readonly ports: { plain: number; deflate: number };
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<number, (reply: Reply) => void>();
  private readonly events: PeerEvent[] = [];
  private eventWaiters: Array<() => void> = [];
  private nextId = 0;
  private stderr = '';
  private exited: string | null = null;

  private constructor(child: ChildProcessWithoutNullStreams, ports: { plain: number; deflate: number }, stderr: string) {
    this.child = child;
    this.ports = ports;
    this.stderr = stderr;
  }

  static async start(): Promise<PythonPeer> {
    const check = spawnSync(PYTHON, ['-c', 'import websockets'], { encoding: 'utf8', timeout: WAIT_MS });
    if (check.status !== 0) {
      const why = check.error?.message ?? check.stderr.trim().split('\n').at(-1);
      throw new Error(
        `Python's websockets package is missing for ${PYTHON} (${why}). ` +
          'Install python3-websockets: run scripts/test-deps.sh (apt-get install python3-websockets).',
      );
    }
    const child = spawn(PYTHON, ['-u', PEER_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => (stderr += text));
    const lines = createInterface({ input: child.stdout });
    const ready = await withTimeout(
      new Promise<{ ports: { plain: number; deflate: number } }>((resolve, reject) => {
        lines.once('line', (line) => resolve(JSON.parse(line)));
        child.once('exit', (code) => reject(new Error(`peer.py exited with ${code} before it was ready: ${stderr}`)));
      }),
      WAIT_MS,
      'peer.py to start its servers',
    ).catch((error: unknown) => {
      child.kill();
      throw error;
    });
    const peer = new PythonPeer(child, ready.ports, stderr);
    child.stderr.on('data', (text: string) => (peer.stderr += text));
    lines.on('line', (line) => peer.onLine(line));
    child.once('exit', (code, signal) => peer.onExit(`peer.py exited (${code ?? signal})`));
    return peer;
  }

  /** Run one command in the Python process; resolves with its answer, rejects if it failed. */
  async request(op: string, args: Record<string, unknown> = {}): Promise<Reply> {
    if (this.exited !== null) throw new Error(`${this.exited}: ${this.stderr}`);
    const id = ++this.nextId;
    const answer = new Promise<Reply>((resolve) => this.pending.set(id, resolve));
    this.child.stdin.write(JSON.stringify({ id, op, timeout: WAIT_MS / 1000, ...args }) + '\n');
    const reply = await withTimeout(answer, WAIT_MS + 2000, `peer.py to answer ${op}`).finally(() => this.pending.delete(id));
    if (!reply.ok) throw new Error(`peer.py ${op} failed: ${reply.error}\n${this.stderr}`);
    return reply;
  }

  /** The first server-side event (past or future) for `path` with that name. */
  event(name: string, path: string): Promise<PeerEvent> {
    const find = (): PeerEvent | undefined => this.events.find((e) => e.event === name && e.path === path);
    let settled = false;
    return withTimeout(
      new Promise<PeerEvent>((resolve) => {
        // Look again after every event line until the one wanted has come (or the wait ended).
        const check = (): void => {
          if (settled) return;
          const found = find();
          if (found !== undefined) resolve(found);
          else this.eventWaiters.push(check);
        };
        check();
      }),
      WAIT_MS,
      `the Python server's ${name} event for ${path}`,
    ).finally(() => (settled = true));
  }

  stop(): Promise<void> {
    if (this.exited !== null) return Promise.resolve();
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end(); // EOF: the peer returns from its command loop
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    return exited.finally(() => clearTimeout(timer));
  }

  private onLine(line: string): void {
    const message = JSON.parse(line) as Reply & { id?: number; event?: string };
    if (typeof message.event === 'string') {
      this.events.push(message as unknown as PeerEvent);
      const waiters = this.eventWaiters;
      this.eventWaiters = [];
      for (const waiter of waiters) waiter();
      return;
    }
    if (typeof message.id === 'number') this.pending.get(message.id)?.(message);
  }

  private onExit(reason: string): void {
    this.exited = reason;
    for (const resolve of this.pending.values()) resolve({ ok: false, error: `${reason}: ${this.stderr}` });
  }
}

let python: PythonPeer;

beforeAll(async () => {
  python = await PythonPeer.start();
});

afterAll(async () => {
  await python?.stop();
});

let tags = 0;
/** A path unique to this connection, so the Python server's events can be told apart. */
function tagged(path: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}t=${++tags}`;
}

describe.each([false, true])('permessage-deflate %s', (deflate) => {
  const compression = deflate ? 'deflate' : null;

  describe('Python client -> Sockeye server', () => {
    let sockeye: EchoServer;
    let plain: Reply;
    let fragmenting: Reply;

    beforeAll(async () => {
      sockeye = await new EchoServer(deflate).start();
      plain = await python.request('open', { url: sockeye.url('/echo'), compression });
      fragmenting = await python.request('open', { url: sockeye.url('/fragment'), compression });
    });

    afterAll(async () => {
      await sockeye?.stop();
    });

    it(`negotiates permessage-deflate ${deflate ? 'on' : 'off'} on both ends`, () => {
      expect(plain.extensions).toEqual(deflate ? ['permessage-deflate'] : []);
      expect(sockeye.opened).toHaveLength(2);
      for (const connection of sockeye.opened) {
        if (deflate) expect(connection.extensions).toMatch(/^permessage-deflate\b/);
        else expect(connection.extensions).toBe('');
      }
    });

    it.each(MATRIX)('$name: Python sends, Sockeye decodes and echoes it back intact', async (c) => {
      const conn = (c.fragmented ? fragmenting : plain).conn;
      const reply = await python.request('echo', { conn, kind: c.kind, size: c.size, fragments: c.fragmented ? FRAGMENTS : 0 });
      expect(reply).toMatchObject({ sent_len: c.size, recv_kind: c.kind, recv_len: c.size, equal: true });

      const record = sockeye.last();
      expect(record).toMatchObject({ isBinary: c.kind === 'binary', size: c.size, sha: reply.sent_sha });
      // websockets ends a fragmented message with an extra empty frame.
      if (c.fragmented) expect(record.frames).toBeGreaterThanOrEqual(FRAGMENTS);
      else expect(record.frames).toBe(1);
      if (!deflate) expect(record.compressed).toBe(false);
      else if (c.size >= BIG) expect(record.compressed).toBe(true);
    });

    it('keeps 1000 messages in order, both ways', async () => {
      const expected = Array.from({ length: 1000 }, (_, i) => `burst ${i}`);
      const reply = await python.request('burst', { conn: plain.conn, count: expected.length });
      expect(reply.received).toEqual(expected);
      expect(sockeye.received.slice(-expected.length).map((r) => r.sha)).toEqual(expected.map((text) => sha256(text)));
    });

    it('Sockeye answers Python pings', async () => {
      const reply = await python.request('ping', { conn: plain.conn, count: 3 });
      expect(reply.rtts).toHaveLength(3);
      for (const rtt of reply.rtts as number[]) expect(rtt).toBeLessThan(WAIT_MS);
    });

    it('Sockeye measures the round trip of a ping to Python', async () => {
      const rtt = await withTimeout(sockeye.opened[0]!.ping('rtt'), WAIT_MS, 'the pong');
      expect(rtt).toBeGreaterThanOrEqual(0);
      expect(rtt).toBeLessThan(WAIT_MS);
    });

    it('Sockeye server close code and reason reach Python (4001 custom)', async () => {
      const { conn } = await python.request('open', { url: sockeye.url('/close?code=4001&reason=custom'), compression });
      expect(await python.request('wait_closed', { conn })).toMatchObject({ code: 4001, reason: 'custom' });
      const close = await sockeye.nextClose();
      expect(close.path).toBe('/close');
      expect(close.info).toMatchObject({ code: 4001, initiator: 'local', wasClean: true });
    });

    it('Python close code and reason reach Sockeye (4002 bye)', async () => {
      const { conn } = await python.request('open', { url: sockeye.url('/echo'), compression });
      const reply = await python.request('close', { conn, code: 4002, reason: 'bye' });
      // RFC 6455 §5.5.1: the answering close frame echoes the status code.
      expect(reply.code).toBe(4002);
      const close = await sockeye.nextClose();
      expect(close.info).toMatchObject({ code: 4002, reason: 'bye', initiator: 'remote', wasClean: true });
    });

    it("Sockeye picks its preferred subprotocol among Python's offers", async () => {
      const { conn, subprotocol } = await python.request('open', { url: sockeye.url('/echo'), compression, subprotocols: ['chat.v1', 'chat.v2'] });
      expect(subprotocol).toBe('chat.v2');
      await python.request('close', { conn });
      expect(await sockeye.nextClose()).toMatchObject({ protocol: 'chat.v2', info: { code: 1000 } });
    });

    it('without a common subprotocol the connection proceeds without one', async () => {
      const { conn, subprotocol } = await python.request('open', { url: sockeye.url('/echo'), compression, subprotocols: ['other'] });
      expect(subprotocol).toBeNull();
      await python.request('close', { conn });
      expect(await sockeye.nextClose()).toMatchObject({ protocol: '', info: { code: 1000 } });
    });
  });

  describe('Sockeye client -> Python server', () => {
    let plain: { connection: Connection<undefined>; inbox: Inbox };
    let fragmenting: { connection: Connection<undefined>; inbox: Inbox };
    let plainPath = '';

    const open = async (path: string, protocols: string[] = []): Promise<{ connection: Connection<undefined>; inbox: Inbox }> => {
      const port = deflate ? python.ports.deflate : python.ports.plain;
      const connection = await connect(`ws://127.0.0.1:${port}${path}`, { perMessageDeflate: deflate, protocols, handshakeTimeout: WAIT_MS });
      return { connection, inbox: new Inbox(connection) };
    };

    beforeAll(async () => {
      plainPath = tagged('/echo');
      plain = await open(plainPath);
      fragmenting = await open(tagged('/fragment'));
    });

    afterAll(() => {
      plain?.connection.terminate();
      fragmenting?.connection.terminate();
    });

    it(`negotiates permessage-deflate ${deflate ? 'on' : 'off'} on both ends`, async () => {
      if (deflate) expect(plain.connection.extensions).toMatch(/^permessage-deflate\b/);
      else expect(plain.connection.extensions).toBe('');
      const opened = await python.event('server-open', plainPath);
      expect(opened.extensions).toEqual(deflate ? ['permessage-deflate'] : []);
    });

    it.each(MATRIX)('$name: Sockeye sends, Python echoes it back intact', async (c) => {
      const peer = c.fragmented ? fragmenting : plain;
      const bytes = payload(c.kind, c.size);
      const binary = c.kind === 'binary';
      if (c.fragmented) {
        // Sockeye's own fragmentSize for the big ones, single fragments otherwise (splitting text mid-character).
        if (c.size >= BIG) peer.connection.send(binary ? bytes : bytes.toString('utf8'), { fragmentSize: Math.ceil(c.size / FRAGMENTS) });
        else splitPieces(bytes).forEach((piece, i, all) => peer.connection.sendFragment(piece, i === all.length - 1, { binary }));
      } else {
        peer.connection.send(binary ? bytes : bytes.toString('utf8'));
      }
      const echo = await peer.inbox.next();
      expect(echo.isBinary).toBe(binary);
      if (c.fragmented) expect(echo.frames).toBeGreaterThanOrEqual(FRAGMENTS);
      else expect(echo.frames).toBe(1);
      if (!deflate) expect(echo.compressed).toBe(false);
      else if (c.size >= BIG) expect(echo.compressed).toBe(true);
      expect(typeof echo.data).toBe(binary ? 'object' : 'string');
      const data = typeof echo.data === 'string' ? Buffer.from(echo.data, 'utf8') : echo.data;
      expect(data.length).toBe(c.size);
      expect(sha256(data)).toBe(sha256(bytes));
    });

    it('keeps 1000 messages of mixed sizes in order', async () => {
      const sent = Array.from({ length: 1000 }, (_, i) => `#${i} ` + '\u20ac'.repeat((i * 37) % 700));
      for (const text of sent) plain.connection.send(text);
      const echoes: string[] = [];
      for (let i = 0; i < sent.length; i++) echoes.push((await plain.inbox.next()).data as string);
      expect(echoes).toEqual(sent);
    });

    it('Sockeye measures the round trip of a ping to Python', async () => {
      for (let i = 0; i < 3; i++) {
        const rtt = await withTimeout(plain.connection.ping(`rtt ${i}`), WAIT_MS, 'the pong');
        expect(rtt).toBeGreaterThanOrEqual(0);
        expect(rtt).toBeLessThan(WAIT_MS);
      }
    });

    it('Python server close code and reason reach Sockeye (4001 custom)', async () => {
      const path = tagged('/close/4001/custom');
      const { inbox } = await open(path);
      const info = await withTimeout(inbox.closed, WAIT_MS, 'the close');
      expect(info).toMatchObject({ code: 4001, reason: 'custom', initiator: 'remote', wasClean: true });
      expect(await python.event('server-close', path)).toMatchObject({ code: 4001 });
    });

    it('Sockeye close code and reason reach Python (4002 bye)', async () => {
      const path = tagged('/echo');
      const { connection, inbox } = await open(path);
      connection.close(4002, 'bye');
      const info = await withTimeout(inbox.closed, WAIT_MS, 'the close');
      expect(info).toMatchObject({ code: 4002, initiator: 'local', wasClean: true });
      expect(await python.event('server-close', path)).toMatchObject({ code: 4002, reason: 'bye' });
    });

    it('negotiates the subprotocol Python speaks among those Sockeye offers', async () => {
      const path = tagged('/echo');
      const { connection } = await open(path, ['nope', 'chat.v1']);
      expect(connection.protocol).toBe('chat.v1');
      const opened = await python.event('server-open', path);
      expect(opened.subprotocol).toBe('chat.v1');
      expect((opened.headers as Record<string, string>)['Sec-WebSocket-Protocol']).toBe('nope, chat.v1');
      connection.close(1000);
      expect(await python.event('server-close', path)).toMatchObject({ code: 1000 });
    });

    it('without a common subprotocol the connection proceeds without one', async () => {
      const path = tagged('/echo');
      const { connection, inbox } = await open(path, ['nope']);
      expect(connection.protocol).toBe('');
      connection.send('still works');
      expect((await inbox.next()).data).toBe('still works');
      connection.close(1000);
      expect(await python.event('server-close', path)).toMatchObject({ code: 1000 });
    });
  });
});

describe('permessage-deflate enabled on one side only', () => {
  it('Python client offering it to a Sockeye server without it: not negotiated, messages still flow', async () => {
    const sockeye = await new EchoServer(false).start();
    try {
      const { conn, extensions } = await python.request('open', { url: sockeye.url('/echo'), compression: 'deflate' });
      expect(extensions).toEqual([]);
      expect(await python.request('echo', { conn, kind: 'text', size: 5000 })).toMatchObject({ equal: true });
      expect(sockeye.last().compressed).toBe(false);
      await python.request('close', { conn });
    } finally {
      await sockeye.stop();
    }
  });

  it('Sockeye client offering it to a Python server without it: not negotiated, messages still flow', async () => {
    const path = tagged('/echo');
    const connection = await connect(`ws://127.0.0.1:${python.ports.plain}${path}`);
    const inbox = new Inbox(connection);
    expect(connection.extensions).toBe('');
    const opened = await python.event('server-open', path);
    expect((opened.headers as Record<string, string>)['Sec-WebSocket-Extensions']).toMatch(/^permessage-deflate/);
    expect(opened.extensions).toEqual([]);
    connection.send('z'.repeat(5000));
    expect(await inbox.next()).toMatchObject({ data: 'z'.repeat(5000), compressed: false });
    connection.close(1000);
    expect(await python.event('server-close', path)).toMatchObject({ code: 1000 });
  });
});
