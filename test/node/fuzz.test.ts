import { constants as zlib, createInflateRaw, inflateRawSync, type InflateRaw } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { routeParams, WebSocketServer, type Connection } from '../../src/index.js';
import { generateScript, Prng, type Message, type Script } from './fuzz-script.js';
import { bufferMemory, MiB } from './memory.js';
import { OP, RawClient, parseClose, type RawFrame } from './raw-client.js';
import { until } from '../wait.js';

/**
 * Random frames over a real socket (issue 9, Tests): a library echo server
 * on 127.0.0.1, with and without permessage-deflate, and raw clients each
 * playing a seeded script of valid traffic followed by a valid close or one
 * invalid input (fuzz-script.ts). For every connection: each valid message
 * before the invalid input comes back intact and in order, each ping gets
 * its pong, the server answers with a close code RFC 6455 allows for that
 * input (or echoes the client's own valid code), and nothing after the
 * invalid input is acted on. For the process: nothing thrown or rejected
 * unhandled, no hook failure, every connection closed once, and memory flat
 * over many connections.
 *
 * Reproduce a failure with FUZZ_SEED=<seed printed in the message>.
 */

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : (Math.random() * 0x1_0000_0000) >>> 0;
/** The server's limit; scripts keep valid messages under it (text of up to 70 000 characters, 4 bytes each at most). */
const MAX_MESSAGE = 300_000;
/** Connections before the memory baseline (allocations that happen once: zlib, JIT, pools). */
const WARM_UP = 30;
/** Connections measured. */
const MEASURED = 150;
/** Connections running at once. */
const CONCURRENCY = 8;
/** One read or end waited for; generous for a loaded 2-core machine, still seconds. */
const WAIT_MS = 10_000;
/**
 * External memory (Buffers and zlib's native state, which Node reports to
 * V8 as external) after a full GC may grow by at most this over the
 * measured connections (0.0 MiB measured): under 28 KiB per connection,
 * where zlib state never released is over 300 KiB per connection (two
 * 32 KiB windows plus zlib's tables). Closed connections kept by the
 * server are caught more precisely by the WeakRef count below (checked
 * by keeping every connection on purpose: 180 of 180 still alive).
 */
const EXTERNAL_GROWTH_BOUND = 4 * MiB;
/** The JavaScript heap after a full GC: a leaked connection keeps its socket, parser and hooks' closures. */
const HEAP_GROWTH_BOUND = 8 * MiB;
/**
 * Resident memory: generous, since RSS does not shrink after a GC (V8 and
 * malloc keep freed pages; 34 MiB of growth was seen with nothing leaked);
 * it catches runaway growth such as the hundreds of MiB of issue 9.
 */
const RSS_GROWTH_BOUND = 96 * MiB;
/** The RFC 7692 §7.2.1 tail removed by the sender, put back before inflating. */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

const thrown: unknown[] = [];
const onThrown = (error: unknown): void => {
  thrown.push(error);
};

beforeAll(() => {
  process.on('uncaughtException', onThrown);
  process.on('unhandledRejection', onThrown);
});

afterAll(() => {
  process.off('uncaughtException', onThrown);
  process.off('unhandledRejection', onThrown);
});

const servers: WebSocketServer[] = [];
const clients = new Set<RawClient>();

afterEach(async () => {
  for (const client of clients) client.destroy();
  clients.clear();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});

interface EchoServer {
  server: WebSocketServer;
  port: number;
  /** Every connection the server opened, weakly: they must all be collectable once closed. */
  opened: WeakRef<Connection<unknown>>[];
  /** Close codes the server's close hook saw, by connection id (the path's last segment). */
  closes: Map<string, number[]>;
  /** What reached onError: hook failures, none expected from an echo. */
  hookFailures: Error[];
  /** Sends the server refused ('dropped' or 'closed'); 'queued' is accepted, over the high-water mark. */
  refusedSends: string[];
}

async function startEcho(deflate: boolean): Promise<EchoServer> {
  const echo: EchoServer = { server: null as unknown as WebSocketServer, port: 0, opened: [], closes: new Map(), hookFailures: [], refusedSends: [] };
  const server = new WebSocketServer({
    maxMessageSize: MAX_MESSAGE,
    perMessageDeflate: deflate,
    heartbeat: false,
    closeTimeout: 2_000,
    onError: (error) => void echo.hookFailures.push(error),
  });
  servers.push(server);
  server.route('/fuzz/:id', {
    open: (connection) => void echo.opened.push(new WeakRef(connection)),
    message: (connection, data, isBinary) => {
      const status = connection.send(data, { binary: isBinary });
      if (status !== 'written' && status !== 'queued') echo.refusedSends.push(`${routeParams(connection).id}: ${status}`);
    },
    close: (connection, info) => {
      const id = routeParams(connection).id ?? '?';
      echo.closes.set(id, [...(echo.closes.get(id) ?? []), info.code]);
    },
    // Protocol failures arrive here too: expected input, nothing to do.
    error: () => {},
  });
  echo.server = server;
  echo.port = (await server.listen(0)).port;
  return echo;
}

/** Inflates the server's compressed messages, keeping the window across messages unless the server resets it. */
class Inflater {
  private readonly stream: InflateRaw | null;

  constructor(noContextTakeover: boolean) {
    this.stream = noContextTakeover ? null : createInflateRaw();
  }

  inflate(payload: Buffer): Promise<Buffer> {
    const input = Buffer.concat([payload, TAIL]);
    const stream = this.stream;
    if (stream === null) return Promise.resolve(inflateRawSync(input, { finishFlush: zlib.Z_SYNC_FLUSH }));
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const onData = (chunk: Buffer): void => void chunks.push(chunk);
      stream.on('data', onData);
      stream.once('error', reject);
      stream.write(input);
      stream.flush(zlib.Z_SYNC_FLUSH, () => {
        stream.off('data', onData);
        stream.off('error', reject);
        resolve(Buffer.concat(chunks));
      });
    });
  }

  close(): void {
    this.stream?.close();
  }
}

/** What came back on one connection. */
interface Received {
  echoes: Message[];
  pongs: Buffer[];
  /** The server's close frame, if one came. */
  close: RawFrame | null;
  /** Frames that no echo server sends: pings, unknown opcodes, continuation without a start. */
  unexpected: string[];
}

/**
 * Read frames into `received` until a close frame, the end of the
 * connection, or `enough()`; data messages are reassembled and inflated.
 */
async function collect(client: RawClient, inflater: Inflater, received: Received, enough: () => boolean): Promise<void> {
  let fragments: RawFrame[] = [];
  for (let i = 0; i < 100_000 && !enough(); i++) {
    let next: RawFrame;
    try {
      next = await client.readFrame(WAIT_MS);
    } catch (error) {
      if (client.ended && client.buffered === 0) return;
      throw error;
    }
    if (next.opcode === OP.close) {
      received.close = next;
      return;
    }
    if (next.opcode === OP.pong) received.pongs.push(next.payload);
    else if (next.opcode === OP.text || next.opcode === OP.binary || (next.opcode === OP.continuation && fragments.length > 0)) {
      fragments.push(next);
      if (!next.fin) continue;
      const first = fragments[0]!;
      const payload = Buffer.concat(fragments.map((f) => f.payload));
      fragments = [];
      received.echoes.push({ binary: first.opcode === OP.binary, data: first.rsv1 ? await inflater.inflate(payload) : payload });
    } else received.unexpected.push(`opcode ${next.opcode}`);
  }
}

/** Null if `actual` is `expected`, else where they differ. */
function messageDifference(actual: readonly Message[], expected: readonly Message[]): string | null {
  for (let i = 0; i < Math.max(actual.length, expected.length); i++) {
    const a = actual[i];
    const e = expected[i];
    if (a === undefined || e === undefined) return `got ${actual.length} messages, expected ${expected.length}`;
    if (a.binary !== e.binary || !a.data.equals(e.data)) {
      return `message ${i}: got ${a.binary ? 'binary' : 'text'} of ${a.data.length} bytes, expected ${e.binary ? 'binary' : 'text'} of ${e.data.length}`;
    }
  }
  return null;
}

function bufferDifference(actual: readonly Buffer[], expected: readonly Buffer[]): string | null {
  if (actual.length !== expected.length) return `got ${actual.length} pongs, expected ${expected.length}`;
  const at = actual.findIndex((a, i) => !a.equals(expected[i]!));
  return at < 0 ? null : `pong ${at} differs from its ping`;
}

/** Write the script's bytes in random pieces, some split mid-frame, yielding between some of them. */
async function writeInPieces(client: RawClient, bytes: Buffer, prng: Prng): Promise<void> {
  let at = 0;
  for (let i = 0; i < 64 && at < bytes.length; i++) {
    const rest = bytes.length - at;
    const size = i === 63 ? rest : Math.min(rest, prng.chance(0.3) ? prng.range(1, 16) : prng.range(1, 8192));
    client.write(bytes.subarray(at, at + size));
    at += size;
    if (prng.chance(0.3)) await new Promise((resolve) => setImmediate(resolve));
  }
}

interface Outcome {
  /** Bytes written plus bytes echoed: the traffic this connection made. */
  traffic: number;
  /** Close codes the server may have recorded for this connection. */
  serverCodes: readonly number[];
}

/** Run connection `index` of a round: its script, then every check on what came back. Throws with the seed on failure. */
async function runConnection(echo: EchoServer, deflate: boolean, index: number): Promise<Outcome> {
  const seed = (SEED + Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  const prng = new Prng(seed ^ 0x5bd1e995);
  const noTakeover = deflate && prng.chance(0.5);
  const offer = deflate ? [`Sec-WebSocket-Extensions: permessage-deflate${noTakeover ? '; server_no_context_takeover' : ''}`] : [];
  const script: Script = generateScript(seed, { deflate, maxMessageSize: MAX_MESSAGE });
  const fail = (what: string): Error =>
    new Error(`FUZZ_SEED=${SEED} connection ${index} (deflate ${deflate}, script seed ${seed}): ${what}\n  script: ${script.outline.join(', ')}`);
  const { client, response } = await RawClient.upgrade(echo.port, { path: `/fuzz/${index}`, extra: offer });
  clients.add(client);
  const inflater = new Inflater(noTakeover || (response.headers.get('sec-websocket-extensions') ?? '').includes('server_no_context_takeover'));
  try {
    const negotiated = (response.headers.get('sec-websocket-extensions') ?? '').includes('permessage-deflate');
    if (negotiated !== deflate) throw fail(`permessage-deflate negotiated: ${negotiated}`);
    const received: Received = { echoes: [], pongs: [], close: null, unexpected: [] };
    const ending = script.ending;
    // What goes out in one stream: the valid part, and the ending unless it is a close sent after the echoes.
    const together = ending.kind !== 'close' || !ending.later;
    const endingBytes = ending.kind === 'close' ? ending.frame : ending.bytes;
    await writeInPieces(client, together ? Buffer.concat([script.bytes, endingBytes]) : script.bytes, prng);
    const allBack = (): boolean => received.echoes.length >= script.echoes.length && received.pongs.length >= script.pings.length;

    let serverCodes: readonly number[];
    if (ending.kind === 'close') {
      if (ending.later) {
        // Everything so far was valid: the connection must still be open, answering.
        await collect(client, inflater, received, allBack);
        if (received.close !== null) throw fail(`closed with ${String(parseClose(received.close).code)} while all traffic was valid`);
        client.send({ opcode: OP.ping, payload: 'still open?' });
        const pongs = received.pongs.length;
        await collect(client, inflater, received, () => received.pongs.length > pongs);
        if (received.pongs.length === pongs) throw fail('no pong to the liveness ping');
        script.pings.push(Buffer.from('still open?'));
        client.write(ending.frame);
      }
      await collect(client, inflater, received, () => false);
      if (received.close === null) throw fail('the connection ended without a close frame');
      const { code } = parseClose(received.close);
      // §5.5.1: the answer echoes the status code received; an empty close may be answered empty or with 1000.
      const allowed = ending.code === undefined ? [undefined, 1000] : [ending.code];
      if (!allowed.includes(code)) throw fail(`close answered with ${String(code)}, expected ${allowed.join(' or ')}`);
      serverCodes = [ending.code ?? 1005];
    } else {
      if (ending.mayWait && received.close === null) {
        // The server may be waiting for the rest of a frame, which only the
        // client's FIN settles. It goes at once: echoes still being
        // compressed must leave before the server ends TCP.
        client.socket.end();
      }
      await collect(client, inflater, received, () => false);
      if (received.close === null) {
        if (!ending.mayWait) throw fail(`no close frame for the invalid input "${ending.name}"`);
      } else {
        const { code, reason } = parseClose(received.close);
        if (code === undefined || !ending.codes.includes(code)) {
          throw fail(`"${ending.name}" answered with close code ${String(code)} "${reason}", allowed: ${ending.codes.join(', ') || 'none'}`);
        }
        // A well-behaved peer answers the close (§5.5.1), if its side is still open.
        if (!ending.mayWait && !client.ended) client.send({ opcode: OP.close, payload: received.close.payload.subarray(0, 2) });
      }
      serverCodes = [...ending.codes, 1005, 1006];
    }
    const echoes = messageDifference(received.echoes, script.echoes);
    const closing = received.close === null ? 'no close frame' : `close ${String(parseClose(received.close).code)}`;
    if (echoes !== null) throw fail(`echoes: ${echoes} (then ${closing})`);
    const pongs = bufferDifference(received.pongs, script.pings);
    if (pongs !== null) throw fail(pongs);
    if (received.unexpected.length > 0) throw fail(`unexpected frames: ${received.unexpected.join(', ')}`);
    // §7.1.1: the server closes the TCP connection once the close handshake is done.
    await client.waitEnd(WAIT_MS).catch(() => {
      throw fail('the server did not close the TCP connection');
    });
    const traffic = script.bytes.length + received.echoes.reduce((sum, m) => sum + m.data.length, 0);
    return { traffic, serverCodes };
  } finally {
    inflater.close();
    client.destroy();
    clients.delete(client);
  }
}

/** Run connections `from` to `to - 1`, CONCURRENCY at a time; checks what the server saw of each. */
async function runRound(echo: EchoServer, deflate: boolean, from: number, to: number): Promise<number> {
  let next = from;
  let traffic = 0;
  const expectedCodes = new Map<string, readonly number[]>();
  const worker = async (): Promise<void> => {
    while (next < to) {
      const index = next++;
      const outcome = await runConnection(echo, deflate, index);
      traffic += outcome.traffic;
      expectedCodes.set(String(index), outcome.serverCodes);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  // Every connection closed on the server too, once each, with a code that fits what its client did.
  for (const [id, allowed] of expectedCodes) {
    const waitedFor = `the server's close hook for connection ${id} (FUZZ_SEED=${SEED})`;
    await until(() => echo.closes.has(id), waitedFor, WAIT_MS);
    const codes = echo.closes.get(id)!;
    if (codes.length !== 1 || !allowed.includes(codes[0]!)) {
      throw new Error(`FUZZ_SEED=${SEED} connection ${id}: server close codes ${codes.join(', ')}, allowed ${allowed.join(', ')}`);
    }
  }
  return traffic;
}

/** Connections still reachable after a full collection (WeakRefs are only cleared between turns). */
async function stillAlive(refs: readonly WeakRef<Connection<unknown>>[]): Promise<number> {
  // Three rounds: the first may only queue the weak callbacks that free native memory.
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    bufferMemory();
  }
  return refs.filter((ref) => ref.deref() !== undefined).length;
}

describe.each([
  { deflate: false, name: 'without compression' },
  { deflate: true, name: 'with permessage-deflate' },
])('random frames against an echo server, $name', ({ deflate }) => {
  it('echoes valid traffic, answers invalid input with an allowed code, never throws, keeps memory flat', { timeout: 120_000 }, async () => {
    const echo = await startEcho(deflate);
    await runRound(echo, deflate, 0, WARM_UP);
    await until(() => echo.server.connections.size === 0, 'the warm-up connections to close', WAIT_MS);
    bufferMemory(); // a full GC
    const before = process.memoryUsage();

    const traffic = await runRound(echo, deflate, WARM_UP, WARM_UP + MEASURED);
    await until(() => echo.server.connections.size === 0, 'every connection to close', WAIT_MS);
    const alive = await stillAlive(echo.opened);
    const after = process.memoryUsage();
    const growth = (key: 'external' | 'heapUsed' | 'rss'): number => after[key] - before[key];
    const mib = (bytes: number): string => (bytes / MiB).toFixed(1);

    const context = `FUZZ_SEED=${SEED}; ${MEASURED} connections, ${mib(traffic)} MiB of traffic; growth: external ${mib(growth('external'))} MiB, heap ${mib(growth('heapUsed'))} MiB, RSS ${mib(growth('rss'))} MiB`;
    if (process.env.FUZZ_VERBOSE !== undefined) console.log(context);
    expect(thrown, context).toEqual([]);
    expect(echo.hookFailures, context).toEqual([]);
    expect(echo.refusedSends, context).toEqual([]);
    expect(echo.opened.length, context).toBe(WARM_UP + MEASURED);
    // A closed connection must not be kept by the server: each would hold its socket and parser.
    expect(alive, context).toBeLessThanOrEqual(1);
    expect(growth('external'), context).toBeLessThan(EXTERNAL_GROWTH_BOUND);
    expect(growth('heapUsed'), context).toBeLessThan(HEAP_GROWTH_BOUND);
    expect(growth('rss'), context).toBeLessThan(RSS_GROWTH_BOUND);
  });
});
