import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { parseArgs } from 'node:util';
import { connect, type ConnectOptions } from '../node/client.js';
import type { CloseInfo, Connection, SendStatus } from '../node/connection.js';
import { HandshakeError } from '../node/errors.js';
import { parseProxyUrl } from '../node/proxy-env.js';
import { CloseCode } from '../protocol/close-code.js';
import { ProtocolError } from '../protocol/errors.js';
import { parseSeconds, parseSize, UsageFailure } from './args.js';
import { LineConsole, type ConsoleStreams } from './console.js';
import { backoffDelay } from '../node/reconnecting.js';
import { commandVector } from './command-line.js';
import { listEndpoints } from './endpoint-hint.js';
import { DEFAULT_MAX_REDIRECTS, headersAfterRedirect, probeRedirect, redirectTarget, REDIRECT_STATUSES } from './redirects.js';
import { MAX_LINE_BYTES, ProcessBridge } from './exec-bridge.js';
import { ExitStatus } from './exit-status.js';
import { describeBinary, describeClose, describeControlPayload, formatMessage, formatRtt, formatWireFrame, oneLine } from './format.js';
import { rawPayload } from './payload-output.js';
import { parseCloseArgs, parseInputLine } from './slash.js';
import { parseTargetUrl } from './target-url.js';
import { certificateHint, clientTlsOptions } from './tls-files.js';

export const CONNECT_HELP = `Usage: sockeye connect URL [options]

Open a WebSocket connection and talk to it: every line you type is sent as a
text message, and everything the server sends is printed.

  < text         a message received       > text         a message sent
  << / >>        a frame (with --trace)   * ...          a note on the connection
  binary messages are shown as "binary N bytes: <hex> |ascii|"

When standard input is not a terminal, its lines are sent in order; at its
end the client waits --wait seconds for answers, then closes normally.

With --raw, standard output carries only what the server sends: each text
message exactly as received on a line of its own, nothing else; notes and
errors go to standard error.

Options:
  -H, --header 'Name: value'  add a request header (repeatable)
  -s, --subprotocol NAME      offer a subprotocol (repeatable, in order of preference)
  -o, --origin ORIGIN         send an Origin header
      --no-deflate            do not offer permessage-deflate (offered by default)
  -x, --execute MSG           send MSG (repeatable, in order; /commands work too) instead
                              of reading standard input, wait --wait seconds, close, exit
  -w, --wait SECONDS          how long to wait for answers after the last message of
                              --execute or piped input (default 2)
  -q, --raw                   standard output: received text messages only, one per
                              line (no markers, notes or sent lines; those go to stderr)
  -b, --binary                send standard input as binary messages, one per chunk read,
                              and write received binary messages' bytes to standard
                              output (text messages stay text lines); implies --raw
      --lines                 with --binary: one binary message per input line instead
                              (a line over 1 MiB is sent in 1 MiB pieces)
  -1, --once                  close after the first message received and exit 0; exit 1
                              if none came within --wait seconds of the end of input
      --json                  pretty-print messages that are JSON; with --raw, one
                              compact JSON value per line (non-JSON text as a string)
      --show-ping-pong        show pings and pongs (pings are always answered)
      --trace                 print every frame in both directions: opcode, FIN, RSV
                              bits, masked, payload length on the wire
      --reconnect             reconnect after the connection drops, waiting 1 s, then
                              doubling up to 30 s; typed lines wait for the connection
      --ping-interval SECONDS ping the server this often (default: never)
      --ping-timeout SECONDS  give up on the connection (exit 1) when a ping has no pong
                              after this long (default: the ping interval)
      --auth USER:PASSWORD    send HTTP Basic credentials with the upgrade request
  -L, --location              follow redirects (301, 302, 303, 307, 308) of the upgrade;
                              credentials are not sent on to another host
      --max-redirects N       with -L: at most N redirects (default 5), then exit 1
      --exec 'CMD ARGS'       connect a program instead of standard input and output:
                              each line it prints is sent as a text message, each message
                              received is written to its input followed by a line feed
                              (with --binary: chunks and bytes as they are); when it
                              exits the connection is closed; when the connection
                              closes it is stopped. The command is split into words
                              like a shell would (quotes, backslashes) but not run by one
      --shell                 with --exec: run the command with /bin/sh -c
      --max-message BYTES     largest message accepted, e.g. 1MiB (default 64MiB)
  -t, --timeout SECONDS       time allowed to connect and upgrade (default 10)
  -k, --insecure              wss://: accept any server certificate
      --ca FILE               wss://: trust the CAs in this PEM file (in place of the
                              system's), e.g. to reach a server with a private CA
      --cert FILE             wss://: present this client certificate (PEM); its key is
                              read from --key, or from FILE itself when --key is absent
      --key FILE              the private key of --cert (PEM, not encrypted)
      --proxy URL             go through this proxy: http://[user:password@]host:port
                              (HTTP CONNECT), socks5:// or socks5h:// (names resolved by
                              the proxy), port 1080 when none is given. Without it the
                              environment variables are read as curl reads them: for
                              wss:// wss_proxy, https_proxy or HTTPS_PROXY; for ws://
                              ws_proxy or http_proxy (lower case only); then all_proxy or
                              ALL_PROXY; no_proxy or NO_PROXY lists hosts and domain
                              suffixes reached directly ("*" for all), even with --proxy
      --no-proxy              connect directly, whatever the environment says
      --http2                 wss://: open the WebSocket as an HTTP/2 stream (RFC 8441
                              extended CONNECT); fails if the server does not offer it
  -h, --help                  show this help

Commands (type them, pipe them, or pass them to --execute):
  /ping [payload]             send a ping and print the round-trip time
  /close [code [reason]]      close with a code (default 1000) and reason, then exit
  /binary FILE                send the bytes of FILE as one binary message
  /quit                       close normally and exit (also Ctrl-D)
  /help                       list the commands
  //text                      send "/text" (a message that starts with a slash)

Exit status:
  0    a clean close that you started, or that the server made with 1000 (or no code)
  1    the connection could not be opened, failed, timed out, or the server closed it
       with another code (the reason is printed on standard error)
  2    invalid arguments, such as a URL that does not parse or is not ws:// or wss://
  3    the server refused the upgrade with an HTTP status (404, 403, 503...)
  130  interrupted twice with Ctrl-C

Examples (against "npm start", which serves the apps on port 8080):
  sockeye connect ws://127.0.0.1:8080/echo/ws
  sockeye connect ws://127.0.0.1:8080/chat/ws -x '{"type":"join","nick":"ann","room":"kitchen"}' -x /ping -w 1 --json
  printf 'first\\nsecond\\n/close 4000 done\\n' | sockeye connect ws://127.0.0.1:8080/echo/ws
  printf 'a\\nb\\n' | sockeye connect ws://127.0.0.1:8080/echo/ws -q -w 0.5
  sockeye connect ws://127.0.0.1:8080/clock/ws -x date -w 3 --trace --show-ping-pong --reconnect
  sockeye connect wss://example.com/socket -H 'Authorization: Bearer abc' -s chat.v2
`;

const SLASH_HELP = `* /ping [payload]          send a ping and print the round-trip time
* /close [code [reason]]   close with a code (default 1000) and reason
* /binary FILE             send the bytes of FILE as one binary message
* /quit                    close normally and exit
* /help                    this list
* //text                   send a message that starts with "/"`;

export interface ConnectSettings {
  url: string;
  options: ConnectOptions;
  execute: string[];
  waitMs: number;
  json: boolean;
  /** Standard output carries received payloads only. */
  raw: boolean;
  /** Standard input is sent as binary messages, received binary written as bytes. */
  binary: boolean;
  /** With `binary`: one message per input line rather than per chunk. */
  lines: boolean;
  /** Close after the first message received. */
  once: boolean;
  /** -L: redirects followed at most (0: none). */
  maxRedirects: number;
  /** `--exec`: the program's argument vector, or `null`. */
  exec: string[] | null;
  /** Keep-alive pings, 0 for none. */
  pingIntervalMs: number;
  pingTimeoutMs: number;
  showPingPong: boolean;
  trace: boolean;
  reconnect: boolean;
}

/** Parse `connect`'s arguments; `null` when help was asked for. */
export function parseConnectArgs(argv: string[]): ConnectSettings | null {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      header: { type: 'string', short: 'H', multiple: true },
      subprotocol: { type: 'string', short: 's', multiple: true },
      origin: { type: 'string', short: 'o' },
      'no-deflate': { type: 'boolean' },
      execute: { type: 'string', short: 'x', multiple: true },
      wait: { type: 'string', short: 'w' },
      json: { type: 'boolean' },
      raw: { type: 'boolean', short: 'q' },
      binary: { type: 'boolean', short: 'b' },
      lines: { type: 'boolean' },
      once: { type: 'boolean', short: '1' },
      'ping-interval': { type: 'string' },
      'ping-timeout': { type: 'string' },
      auth: { type: 'string' },
      exec: { type: 'string' },
      shell: { type: 'boolean' },
      location: { type: 'boolean', short: 'L' },
      'max-redirects': { type: 'string' },
      'show-ping-pong': { type: 'boolean' },
      trace: { type: 'boolean' },
      reconnect: { type: 'boolean' },
      'max-message': { type: 'string' },
      timeout: { type: 'string', short: 't' },
      insecure: { type: 'boolean', short: 'k' },
      ca: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      proxy: { type: 'string' },
      'no-proxy': { type: 'boolean' },
      http2: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) return null;
  if (positionals.length === 0) throw new UsageFailure('connect needs a URL, e.g. sockeye connect ws://127.0.0.1:8080');
  if (positionals.length > 1) throw new UsageFailure(`unexpected argument: ${positionals[1]}`);
  const headers = (values.header ?? []).map(parseHeader);
  if (values.auth !== undefined) headers.push(basicAuthorization(values.auth));
  const binary = values.binary === true;
  if (values.lines === true && !binary) throw new UsageFailure('--lines goes with --binary');
  if (binary && (values.execute ?? []).length > 0) throw new UsageFailure('--binary reads standard input; it does not go with --execute');
  const redirectLimit = values['max-redirects'] ?? String(DEFAULT_MAX_REDIRECTS);
  if (!/^\d+$/.test(redirectLimit)) throw new UsageFailure(`invalid redirect count: ${redirectLimit}`);
  if (values['max-redirects'] !== undefined && values.location !== true) throw new UsageFailure('--max-redirects goes with -L');
  const exec = values.exec === undefined ? null : commandVector(values.exec, values.shell === true);
  if (values.shell === true && exec === null) throw new UsageFailure('--shell goes with --exec');
  if (exec !== null) {
    for (const other of ['execute', 'reconnect', 'once', 'lines'] as const) {
      const value = values[other];
      if (value === true || (Array.isArray(value) && value.length > 0)) throw new UsageFailure(`--exec does not go with --${other}`);
    }
  }
  const pingIntervalMs = parseSeconds(values['ping-interval'], 0, 'ping interval');
  const pingTimeoutMs = parseSeconds(values['ping-timeout'], pingIntervalMs, 'ping timeout');
  if (values['ping-timeout'] !== undefined && pingIntervalMs === 0) throw new UsageFailure('--ping-timeout needs --ping-interval');
  if (pingIntervalMs > 0 && pingTimeoutMs === 0) throw new UsageFailure('invalid ping timeout: 0');
  const options: ConnectOptions = {
    protocols: values.subprotocol ?? [],
    headers,
    origin: values.origin,
    perMessageDeflate: values['no-deflate'] !== true,
    maxMessageSize: parseSize(values['max-message'], 64 * 1024 * 1024, 'message size'),
    handshakeTimeout: parseSeconds(values.timeout, 10_000, 'timeout'),
  };
  if (options.handshakeTimeout === 0) throw new UsageFailure('invalid timeout: 0');
  const tls = clientTlsOptions({ ca: values.ca, cert: values.cert, key: values.key, insecure: values.insecure });
  if (tls !== undefined) options.tls = tls;
  if (values.proxy !== undefined && values['no-proxy'] === true) throw new UsageFailure('--proxy and --no-proxy contradict each other');
  if (values.proxy !== undefined) {
    // Checked here so a typo is an argument error (2), not a failed connection.
    try {
      parseProxyUrl(values.proxy, '--proxy');
    } catch (error) {
      throw new UsageFailure((error as Error).message);
    }
    options.proxy = values.proxy;
  }
  if (values['no-proxy'] === true) options.proxy = false;
  if (values.http2 === true) {
    if (values.proxy !== undefined) throw new UsageFailure('--http2 does not go through a proxy; drop --proxy or --http2');
    if (!/^(wss|https):/i.test(parseTargetUrl(positionals[0]!).protocol))
      throw new UsageFailure('--http2 needs a wss:// URL (HTTP/2 is spoken over TLS)');
    options.http2 = true;
    // The environment's proxy would make connect() refuse: HTTP/2 here is direct.
    options.proxy = false;
  }
  return {
    url: parseTargetUrl(positionals[0]!).href,
    options,
    execute: values.execute ?? [],
    waitMs: parseSeconds(values.wait, 2000, 'wait'),
    json: values.json === true,
    raw: values.raw === true || binary,
    binary,
    lines: values.lines === true,
    once: values.once === true,
    maxRedirects: values.location === true ? Number(redirectLimit) : 0,
    exec,
    pingIntervalMs,
    pingTimeoutMs,
    showPingPong: values['show-ping-pong'] === true,
    trace: values.trace === true,
    reconnect: values.reconnect === true,
  };
}

/**
 * `--auth user:password` as an Authorization header (RFC 7617 §2): the
 * pair, split at the first colon (a user-id cannot contain one), in UTF-8
 * (§2.1's charset), base64-encoded.
 */
function basicAuthorization(text: string): [string, string] {
  if (!text.includes(':')) throw new UsageFailure('invalid --auth: use USER:PASSWORD');
  return ['Authorization', `Basic ${Buffer.from(text, 'utf8').toString('base64')}`];
}

/** `Name: value`, split at the first colon (RFC 9110 §5: field names cannot contain one). */
function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(':');
  const name = colon < 0 ? '' : text.slice(0, colon).trim();
  if (name === '') throw new UsageFailure(`invalid header ${JSON.stringify(text)}: use 'Name: value'`);
  return [name, text.slice(colon + 1).trim()];
}

/** Run `sockeye connect`; resolves with the exit status. */
export async function connectCommand(argv: string[], streams: ConsoleStreams): Promise<number> {
  const settings = parseConnectArgs(argv);
  if (settings === null) {
    streams.output.write(CONNECT_HELP);
    return 0;
  }
  // --raw: standard output is for payloads only, so the prompt is drawn on standard error.
  const terminal = new LineConsole(streams, '> ', { promptOn: settings.raw ? 'errors' : 'output' });
  const session = new ClientSession(settings, terminal, streams.output);
  const interrupt = (): void => session.interrupt();
  terminal.onInterrupt(interrupt);
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  session.start();
  pumpInput(settings, terminal, session, streams.input).catch((error: unknown) => {
    // Input closed under the reader because the session ended: nothing went wrong.
    if (session.finished) return;
    terminal.error(`sockeye: reading input failed: ${error instanceof Error ? error.message : String(error)}`);
    void session.endOfInput(0);
  });
  const status = await session.exit;
  process.off('SIGINT', interrupt);
  process.off('SIGTERM', interrupt);
  terminal.close();
  return status;
}

/** Feed typed, piped or --execute lines to the session, one at a time, then signal their end. */
async function pumpInput(settings: ConnectSettings, terminal: LineConsole, session: ClientSession, input: NodeJS.ReadableStream): Promise<void> {
  // The prompt appears after the "connected" line, and nothing is read if the connection never opens.
  if ((await session.whenOpen()) === null) return;
  // The program is the input; the session ends when it exits or the connection closes.
  if (settings.exec !== null) return;
  if (settings.binary) {
    for await (const chunk of binaryInput(input, settings.lines)) {
      if (session.finished) break;
      await session.sendBinary(chunk);
    }
    await session.endOfInput(settings.waitMs);
    return;
  }
  const source = settings.execute.length > 0 ? settings.execute : terminal.lines();
  for await (const line of source) {
    if (session.finished) break;
    await session.handleLine(line);
    terminal.ready();
  }
  await session.endOfInput(terminal.interactive && settings.execute.length === 0 ? 0 : settings.waitMs);
}

/**
 * Standard input as binary messages: each chunk as read (a pipe gives up to
 * 64 KiB at a time), or each line without its line feed.
 */
async function* binaryInput(input: NodeJS.ReadableStream, byLine: boolean): AsyncGenerator<Buffer> {
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (!byLine) {
      yield bytes;
      continue;
    }
    pending = pending.length === 0 ? bytes : Buffer.concat([pending, bytes]);
    let start = 0;
    for (let end = pending.indexOf(0x0a); end >= 0; end = pending.indexOf(0x0a, start)) {
      yield pending.subarray(start, end);
      start = end + 1;
    }
    // A run without line feeds does not grow without bound: it goes in pieces.
    for (; pending.length - start > MAX_LINE_BYTES; start += MAX_LINE_BYTES) yield pending.subarray(start, start + MAX_LINE_BYTES);
    pending = pending.subarray(start);
  }
  if (byLine && pending.length > 0) yield pending;
}

/**
 * Back-off before reconnect attempt n (0-based): 1 s, doubling, at most
 * 30 s, less a random share of up to half (the shared `backoffDelay`), so
 * clients dropped together do not all come back in the same instant.
 */
export function reconnectDelay(attempt: number, random: () => number = Math.random): number {
  return backoffDelay(attempt + 1, { initialDelay: 1000, factor: 2, maxDelay: 30_000, jitter: 0.5 }, random);
}

/**
 * One `connect` session: the current connection (several, with
 * --reconnect), what is printed about it, and the exit status.
 */
class ClientSession {
  readonly exit: Promise<number>;
  finished = false;

  private readonly settings: ConnectSettings;
  private readonly terminal: LineConsole;
  /** Where to connect: the URL given, or where -L was sent. */
  private url: string;
  private options: ConnectOptions;
  private redirects = 0;
  /** Where --raw payloads go (standard output). */
  private readonly output: NodeJS.WritableStream;
  private connection: Connection<undefined> | null = null;
  /** We started closing (or quitting): no reconnect, and a clean close exits 0. */
  private leaving = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private openWaiters: Array<(connection: Connection<undefined> | null) => void> = [];
  private lastFailure = '';
  /** Messages received (all connections). */
  private received = 0;
  /** The --exec program of the current connection. */
  private bridge: ProcessBridge | null = null;
  /** Why the connection we are closing counts as a failure (--once timeout, no pong). */
  private failure: string | null = null;
  private interrupts = 0;
  private resolveExit!: (status: number) => void;

  constructor(settings: ConnectSettings, terminal: LineConsole, output: NodeJS.WritableStream) {
    this.settings = settings;
    this.terminal = terminal;
    this.output = output;
    this.url = settings.url;
    this.options = settings.options;
    this.exit = new Promise((resolve) => (this.resolveExit = resolve));
  }

  start(): void {
    void this.open();
  }

  /** The open connection, waiting for it while connecting; `null` once there will be none. */
  whenOpen(): Promise<Connection<undefined> | null> {
    if (this.finished || this.leaving) return Promise.resolve(null);
    if (this.connection !== null) return Promise.resolve(this.connection);
    return new Promise((resolve) => this.openWaiters.push(resolve));
  }

  async handleLine(line: string): Promise<void> {
    try {
      const input = parseInputLine(line);
      if (input.kind === 'message') await this.sendText(input.text);
      else await this.command(input.name, input.args);
    } catch (error) {
      this.complain(error instanceof Error ? error.message : String(error));
    }
  }

  /** Input ended: give answers `waitMs` to arrive (cut short if the connection ends), then close normally. */
  async endOfInput(waitMs: number): Promise<void> {
    if (this.finished) return;
    if (waitMs > 0 && this.connection !== null && !this.leaving) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.exit, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
      clearTimeout(timer);
    }
    if (this.finished) return;
    if (this.settings.once && this.received === 0) this.failure = `no message within ${waitMs / 1000} s`;
    this.leave(CloseCode.Normal, '');
  }

  /** One chunk (or line) of standard input with --binary. */
  async sendBinary(bytes: Buffer): Promise<void> {
    const connection = await this.whenOpen();
    if (connection === null) {
      this.complain(`not sent, the connection is closed: ${bytes.length} bytes`);
      return;
    }
    await this.sent(connection, connection.send(bytes, { binary: true }), bytes.length);
  }

  /** Ctrl-C or SIGTERM: close normally the first time, give up at once the second. */
  interrupt(): void {
    this.interrupts++;
    if (this.interrupts === 1 && this.connection !== null && !this.leaving) {
      this.note('closing (press Ctrl-C again to quit at once)');
      this.leave(CloseCode.Normal, '');
      return;
    }
    this.connection?.terminate('interrupted');
    this.finish(ExitStatus.Interrupted);
  }

  // ---- connecting --------------------------------------------------------

  private async open(): Promise<void> {
    this.retryTimer = null;
    let connection: Connection<undefined>;
    try {
      connection = await connect(this.url, this.options);
    } catch (error) {
      const message = oneLine(error instanceof Error ? error.message : String(error));
      if (this.finished) return;
      if (this.settings.maxRedirects > 0 && error instanceof HandshakeError && REDIRECT_STATUSES.has(error.status ?? 0)) {
        await this.redirect(error.status!, message);
        return;
      }
      if (this.settings.reconnect && !this.leaving && isRetryable(error)) {
        this.retry(message);
        return;
      }
      const refused = error instanceof HandshakeError && error.code === 'WS_ERR_HANDSHAKE_REFUSED';
      if (refused && error.status === 404) {
        const endpoints = await listEndpoints(new URL(this.url), { tls: this.options.tls });
        if (this.finished) return;
        if (endpoints !== null) {
          this.fail(`${message}\nsockeye: this server's WebSocket endpoints:\n${endpoints.map((url) => `  ${url}`).join('\n')}`, ExitStatus.Refused);
          return;
        }
      }
      const hint = certificateHint(error);
      this.fail(hint === null ? message : `${message}\nsockeye: ${hint}`, refused ? ExitStatus.Refused : ExitStatus.Failure);
      return;
    }
    if (this.finished || this.leaving) {
      connection.close(CloseCode.Normal);
      return;
    }
    this.attach(connection);
  }

  /** -L: ask where the redirect points, and go there (a bounded number of times). */
  private async redirect(status: number, message: string): Promise<void> {
    const from = new URL(this.url);
    const location = await probeRedirect(from, this.options.headers as ReadonlyArray<readonly [string, string]>, { tls: this.options.tls });
    if (this.finished) return;
    const next = location === null ? null : redirectTarget(location, from);
    if (next === null) {
      this.fail(`${message} (a redirect without a ws, wss, http or https Location to follow)`, ExitStatus.Refused);
      return;
    }
    if (this.redirects >= this.settings.maxRedirects) {
      this.fail(`too many redirects: ${this.redirects} followed, and ${status} to ${next.href} next`);
      return;
    }
    this.redirects++;
    this.note(`redirected with ${status} to ${next.href}`);
    this.options = { ...this.options, headers: headersAfterRedirect(this.options.headers as ReadonlyArray<readonly [string, string]>, from, next) };
    this.url = next.href;
    await this.open();
  }

  private attach(connection: Connection<undefined>): void {
    const { trace, showPingPong } = this.settings;
    this.connection = connection;
    this.attempt = 0;
    connection.on('message', (data, isBinary) => this.deliver(connection, data, isBinary));
    if (trace) connection.on('wire', (frame) => this.print(formatWireFrame(frame)));
    if (showPingPong) {
      connection.on('ping', (payload) => {
        const shown = describeControlPayload(payload);
        this.print(`< ping${shown}`);
        this.print(`> pong${shown} (automatic answer)`);
      });
    }
    // A pong with a round-trip time answers a /ping (the only pings sent here): printed
    // from the event rather than the ping's promise, so it appears in arrival order.
    connection.on('pong', (payload, rtt) => {
      const shown = describeControlPayload(payload);
      if (rtt !== undefined && !isKeepAlive(payload)) this.print(`< pong${shown} in ${formatRtt(rtt)}`);
      else if (showPingPong) this.print(`< pong${shown}`);
    });
    connection.on('close', (info) => this.closed(connection, info));
    this.keepAlive(connection);
    if (this.settings.exec !== null) this.startProgram(connection, this.settings.exec);

    const details = [
      this.options.http2 === true ? 'over HTTP/2' : null,
      connection.protocol === '' ? null : `subprotocol ${connection.protocol}`,
      connection.extensions === '' ? null : `extensions ${connection.extensions}`,
    ].filter((d) => d !== null);
    this.note(`connected to ${new URL(this.url).href}${details.length > 0 ? ` (${details.join('; ')})` : ''}`);
    if (this.terminal.interactive && this.settings.execute.length === 0) {
      this.note('type a message and press Enter; /help lists the commands; Ctrl-D closes');
    }
    const waiters = this.openWaiters;
    this.openWaiters = [];
    for (const resolve of waiters) resolve(connection);
  }

  private closed(connection: Connection<undefined>, info: CloseInfo): void {
    if (this.connection === connection) this.connection = null;
    if (this.finished) return;
    const by =
      info.initiator === 'local' ? 'closed'
      : info.initiator === 'remote' ? 'closed by the server'
      : 'connection lost';
    const outcome = this.failure ?? closeOutcome(info, this.leaving);
    this.failure = null;
    // RFC 6455 §7.4.1: 1008 says the server will not take us as we are; trying again would not help.
    if (outcome !== null && this.settings.reconnect && !this.leaving && info.code !== CloseCode.PolicyViolation) {
      // One notice for the close and the retry together.
      this.retry(outcome);
      return;
    }
    this.note(`${by}: ${describeClose(info.code, info.reason)}`);
    if (outcome === null) {
      this.finish(0);
      return;
    }
    this.fail(outcome);
  }

  private retry(reason: string): void {
    this.lastFailure = reason;
    const delay = reconnectDelay(this.attempt++);
    this.note(`${reason}; reconnecting to ${this.url} in ${(delay / 1000).toFixed(1)} s (attempt ${this.attempt})`);
    this.retryTimer = setTimeout(() => void this.open(), delay);
  }

  /** A message from the server: a line for people, or (--raw) the payload itself. */
  private deliver(connection: Connection<undefined>, data: string | Buffer, isBinary: boolean): void {
    // --once: what follows the first message (in the same read) is not for us.
    if (this.settings.once && this.received > 0) return;
    this.received++;
    if (this.bridge !== null) {
      this.bridge.input(data, isBinary);
      return;
    }
    if (!this.settings.raw) {
      this.terminal.print(formatMessage('<', data, isBinary, { json: this.settings.json }));
    } else {
      const payload = rawPayload(data, isBinary, { json: this.settings.json, binary: this.settings.binary });
      if (payload === null) {
        this.note(`binary message of ${data.length} bytes not written (use --binary to write bytes)`);
      } else if (!this.output.write(payload)) {
        // A slow reader downstream slows the socket, rather than filling memory.
        connection.pause();
        this.output.once('drain', () => connection.resume());
      }
    }
    if (this.settings.once) this.leave(CloseCode.Normal, '');
  }

  /** --exec: the program takes the place of standard input and output for this connection. */
  private startProgram(connection: Connection<undefined>, argv: string[]): void {
    const bridge = new ProcessBridge(argv, connection, { binary: this.settings.binary, stderr: 'inherit' });
    this.bridge = bridge;
    connection.once('close', () => bridge.stop());
    void bridge.exited.then(({ code, signal, error }) => {
      if (this.finished) return;
      if (error !== undefined) this.failure = `cannot run ${argv[0]!}: ${error.message}`;
      else if (code !== 0 && !this.leaving) this.failure = `${argv[0]!} exited with ${code === null ? `signal ${signal ?? '?'}` : `status ${code}`}`;
      this.leave(CloseCode.Normal, '');
    });
  }

  /**
   * --ping-interval: one ping at a time; a ping without its pong after
   * --ping-timeout means the server (or the path to it) is gone: cut the
   * connection and say so.
   */
  private keepAlive(connection: Connection<undefined>): void {
    const { pingIntervalMs: interval, pingTimeoutMs: timeout } = this.settings;
    if (interval === 0) return;
    let waiting = false;
    const timer = setInterval(() => {
      if (waiting) return;
      waiting = true;
      const deadline = setTimeout(() => {
        this.failure = `no pong within ${timeout / 1000} s: the server stopped answering pings`;
        connection.terminate('no pong');
      }, timeout);
      connection
        .ping(KEEPALIVE_PAYLOAD)
        .catch(() => undefined)
        .finally(() => {
          clearTimeout(deadline);
          waiting = false;
        });
    }, interval);
    connection.once('close', () => clearInterval(timer));
  }

  // ---- input ---------------------------------------------------------------

  private async sendText(text: string): Promise<void> {
    if (this.connection === null && !this.leaving && !this.finished) this.note('not connected; the message waits for the connection');
    const connection = await this.whenOpen();
    if (connection === null) {
      this.complain(`not sent, the connection is ${this.finished ? 'closed' : 'closing'}: ${oneLine(text, 60)}`);
      return;
    }
    if ((!this.terminal.interactive || this.settings.execute.length > 0) && !this.settings.raw) {
      this.print(formatMessage('>', text, false, { json: this.settings.json }));
    }
    await this.sent(connection, connection.send(text), text.length);
  }

  private async command(name: string, args: string): Promise<void> {
    switch (name) {
      case 'help':
        this.print(SLASH_HELP);
        return;
      case 'ping':
        await this.ping(args);
        return;
      case 'close': {
        const { code, reason } = parseCloseArgs(args, CloseCode.Normal);
        if (this.connection === null) throw new Error('not connected');
        this.note(`closing: ${describeClose(code, reason)}`);
        this.leave(code, reason);
        return;
      }
      case 'binary':
        await this.sendFile(args.trim());
        return;
      case 'quit':
      case 'exit':
        this.leave(CloseCode.Normal, '');
        return;
      default:
        throw new Error(`unknown command /${name}: /help lists the commands; start a message with // to send "/${name}..."`);
    }
  }

  private async ping(payload: string): Promise<void> {
    const connection = await this.whenOpen();
    if (connection === null) throw new Error('not connected');
    connection.ping(payload).catch((error: unknown) => {
      this.complain(`ping: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  private async sendFile(path: string): Promise<void> {
    if (path === '') throw new Error('usage: /binary FILE');
    const resolved = path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path;
    const bytes = await readFile(resolved);
    const connection = await this.whenOpen();
    if (connection === null) throw new Error(`not sent, not connected: ${path}`);
    if (!this.settings.raw) this.print(`> ${describeBinary(bytes)}`);
    await this.sent(connection, connection.send(bytes, { binary: true }), bytes.length);
  }

  /** What `send()` answered: wait out backpressure, say when nothing was sent. */
  private async sent(connection: Connection<undefined>, status: SendStatus, size: number): Promise<void> {
    if (status === 'queued') await connection.drained();
    else if (status === 'closed' || status === 'dropped') this.complain(`not sent (${size} bytes): the connection is closing`);
  }

  // ---- ending ----------------------------------------------------------------

  /** Close with this code and reason and exit once the closing handshake is over. */
  private leave(code: number, reason: string): void {
    if (this.finished) return;
    this.leaving = true;
    const connection = this.connection;
    if (connection === null) {
      // Between reconnect attempts there is nothing to close.
      this.fail(this.lastFailure === '' ? 'not connected' : `not connected: ${this.lastFailure}`);
      return;
    }
    connection.close(code, reason);
  }

  private fail(line: string, status: number = ExitStatus.Failure): void {
    this.terminal.error(`sockeye: ${line}`);
    this.finish(status);
  }

  private finish(status: number): void {
    if (this.finished) return;
    this.finished = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const waiters = this.openWaiters;
    this.openWaiters = [];
    for (const resolve of waiters) resolve(null);
    this.resolveExit(status);
  }

  /** Lines for people: standard output, or standard error with --raw. */
  private print(text: string): void {
    if (this.settings.raw) this.terminal.error(text);
    else this.terminal.print(text);
  }

  private note(text: string): void {
    this.print(`* ${text}`);
  }

  private complain(text: string): void {
    this.terminal.error(`sockeye: ${text}`);
  }
}

/** The payload of --ping-interval's pings, so their pongs are not printed as answers to /ping. */
const KEEPALIVE_PAYLOAD = 'sockeye keep-alive';

function isKeepAlive(payload: Uint8Array): boolean {
  return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('latin1') === KEEPALIVE_PAYLOAD;
}

/**
 * `null` when the close counts as normal, otherwise the one-line reason:
 * a close that did not complete both handshakes (RFC 6455 §7.1.4), or a
 * server that closed with something other than 1000 or no code at all.
 */
function closeOutcome(info: CloseInfo, leaving: boolean): string | null {
  const cause = info.error?.message ?? info.reason;
  if (!info.wasClean) {
    // We failed the connection (§7.1.7): say why, and with which code.
    if (info.error instanceof ProtocolError) return `connection failed: ${oneLine(cause)} (sent close ${describeClose(info.error.closeCode, '')})`;
    if (info.code === CloseCode.Abnormal) return `connection closed abnormally (1006)${cause === '' ? '' : `: ${oneLine(cause)}`}`;
    return `connection failed (${describeClose(info.code, '')})${cause === '' ? '' : `: ${oneLine(cause)}`}`;
  }
  if (info.initiator === 'local' && leaving) return null;
  if (info.code === CloseCode.Normal || info.code === CloseCode.NoStatus) return null;
  return `server closed the connection: ${oneLine(describeClose(info.code, info.reason))}`;
}

/**
 * Whether another attempt could succeed: not for a malformed URL or request,
 * nor for a 4xx refusal other than 408 (timeout) and 429 (too many requests).
 */
function isRetryable(error: unknown): boolean {
  if (!(error instanceof HandshakeError)) return false;
  if (error.code === 'WS_ERR_INVALID_URL') return false;
  const status = error.status;
  // A redirect answers the same way every time; -L follows it, retrying does not.
  if (error.code === 'WS_ERR_HANDSHAKE_REFUSED' && status !== undefined && status < 400) return false;
  if (error.code === 'WS_ERR_HANDSHAKE_REFUSED' && status !== undefined && status >= 400 && status < 500) {
    return status === 408 || status === 429;
  }
  return true;
}
