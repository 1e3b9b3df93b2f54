import type { TlsOptions } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { parseArgs } from 'node:util';
import type { CloseInfo, Connection, SendData } from '../node/connection.js';
import { WebSocketServer } from '../node/server.js';
import { parsePort, parseSize, UsageFailure } from './args.js';
import { LineConsole, type ConsoleStreams } from './console.js';
import { describeBinary, describeClose, describeControlPayload, formatMessage, formatRtt, formatWireFrame, oneLine } from './format.js';
import { firstWord, parseCloseArgs, parseInputLine } from './slash.js';
import { serverTlsOptions } from './tls-files.js';
import { CloseCode } from '../protocol/close-code.js';

export const LISTEN_HELP = `Usage: sockeye listen PORT [options]

Run a small WebSocket server on PORT (0 picks a free one) that accepts any
path, prints what every client sends, tagged by client, and sends every line
you type to all connected clients.

  [#1 127.0.0.1:53422] * connected: /chat
  [#1 127.0.0.1:53422] < hello            a message from client #1
  [all 2] > hi                            a typed line sent to 2 clients

Options:
  --host HOST             address to bind (default 127.0.0.1)
  --tls-cert FILE         serve wss:// with this certificate (PEM, the chain after it),
                          over HTTP/1.1 and HTTP/2 (RFC 8441) on the same port
  --tls-key FILE          the certificate's private key (PEM)
  -s, --subprotocol NAME  a subprotocol to accept (repeatable, in order of preference);
                          without it the client's first offer is accepted
  --no-deflate            do not accept permessage-deflate (accepted by default)
  --max-message BYTES     largest message accepted, e.g. 1MiB (default 64MiB)
  --json                  pretty-print messages that are JSON
  --show-ping-pong        show pings and pongs from clients
  --trace                 print every frame in both directions, per client
  -h, --help              show this help

Commands (type them or pipe them in; other lines go to every client):
  /clients                      list the connected clients
  /to N MESSAGE                 send MESSAGE to client N only
  /kick N [code [reason]]       close client N's connection (default 1000)
  /drop N                       cut client N's TCP connection without a close frame
  /ping [N]                     ping client N (or all) and print the round-trip times
  /binary FILE                  send the bytes of FILE to every client as one binary message
  /quit                         close every connection with 1001 and exit (also Ctrl-D)
  /help                         list the commands
  //text                        send "/text" (a message that starts with a slash)

When standard input is not a terminal, the server keeps running after its
end; stop it with Ctrl-C or SIGTERM (connections are closed with 1001).

Examples:
  sockeye listen 9000
  sockeye listen 9000 --host 0.0.0.0 -s chat.v2 --json
  sockeye listen 0 --trace
`;

const SLASH_HELP = `* /clients                 list the connected clients
* /to N MESSAGE            send MESSAGE to client N only
* /kick N [code [reason]]  close client N's connection (default 1000)
* /drop N                  cut client N's TCP connection without a close frame
* /ping [N]                ping client N (or all) and print the round-trip times
* /binary FILE             send the bytes of FILE to every client
* /quit                    close every connection with 1001 and exit
* //text                   send a message that starts with "/"
* any other line is sent to every client`;

/** What the listener keeps about each client. */
interface Client {
  id: number;
  /** `[#1 127.0.0.1:53422]`: the prefix of every line about this client. */
  tag: string;
  path: string;
  since: number;
  received: number;
  sent: number;
}

interface ListenSettings {
  port: number;
  host: string;
  protocols: string[];
  deflate: boolean;
  maxMessageSize: number;
  json: boolean;
  showPingPong: boolean;
  trace: boolean;
  /** wss:// with this certificate and key. */
  tls: TlsOptions | undefined;
}

function parseListenArgs(argv: string[]): ListenSettings | null {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      host: { type: 'string' },
      subprotocol: { type: 'string', short: 's', multiple: true },
      'no-deflate': { type: 'boolean' },
      'max-message': { type: 'string' },
      json: { type: 'boolean' },
      'show-ping-pong': { type: 'boolean' },
      trace: { type: 'boolean' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) return null;
  if (positionals.length === 0) throw new UsageFailure('listen needs a PORT, e.g. sockeye listen 9000 (0 picks a free port)');
  if (positionals.length > 1) throw new UsageFailure(`unexpected argument: ${positionals[1]}`);
  return {
    port: parsePort(positionals[0], 0),
    host: values.host ?? '127.0.0.1',
    protocols: values.subprotocol ?? [],
    deflate: values['no-deflate'] !== true,
    maxMessageSize: parseSize(values['max-message'], 64 * 1024 * 1024, 'message size'),
    json: values.json === true,
    showPingPong: values['show-ping-pong'] === true,
    trace: values.trace === true,
    tls: serverTlsOptions(values['tls-cert'], values['tls-key']),
  };
}

/** Run `sockeye listen`; resolves with the exit status once the server stopped. */
export async function listenCommand(argv: string[], streams: ConsoleStreams): Promise<number> {
  const settings = parseListenArgs(argv);
  if (settings === null) {
    streams.output.write(LISTEN_HELP);
    return 0;
  }
  const terminal = new LineConsole(streams, '> ');
  const listener = new Listener(settings, terminal);
  await listener.start();
  const interrupt = (): void => listener.interrupt();
  terminal.onInterrupt(interrupt);
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  pumpInput(terminal, listener).catch((error: unknown) => {
    terminal.error(`sockeye: reading input failed: ${error instanceof Error ? error.message : String(error)}`);
  });
  const status = await listener.exit;
  process.off('SIGINT', interrupt);
  process.off('SIGTERM', interrupt);
  terminal.close();
  return status;
}

async function pumpInput(terminal: LineConsole, listener: Listener): Promise<void> {
  for await (const line of terminal.lines()) {
    if (listener.stopping) return;
    await listener.handleLine(line);
    terminal.ready();
  }
  // Ctrl-D at the prompt ends the session; the end of piped input does not stop the server.
  if (terminal.interactive) listener.quit();
}

class Listener {
  readonly exit: Promise<number>;
  stopping = false;

  private readonly settings: ListenSettings;
  private readonly terminal: LineConsole;
  private readonly server: WebSocketServer;
  private readonly clients = new Map<number, Connection<Client>>();
  private nextId = 1;
  private resolveExit!: (status: number) => void;

  constructor(settings: ListenSettings, terminal: LineConsole) {
    this.settings = settings;
    this.terminal = terminal;
    this.exit = new Promise((resolve) => (this.resolveExit = resolve));
    this.server = new WebSocketServer({
      perMessageDeflate: settings.deflate,
      maxMessageSize: settings.maxMessageSize,
      tls: settings.tls,
      http2: settings.tls !== undefined,
    });
    const { protocols, json } = settings;
    this.server.route<Client>('*', {
      // RFC 6455 §4.2.2: the server picks one of the offered subprotocols, or none.
      protocols: (offered) => (protocols.length === 0 ? offered[0] : protocols.find((p) => offered.includes(p))),
      authenticate: (request) => ({ id: 0, tag: '', path: request.url.pathname + request.url.search, since: 0, received: 0, sent: 0 }),
      open: (connection) => this.opened(connection),
      message: (connection, data, isBinary) => {
        connection.context.received++;
        this.print(formatMessage(`${connection.context.tag} <`, data, isBinary, { json }));
      },
      close: (connection, info) => this.closed(connection, info),
    });
  }

  async start(): Promise<void> {
    const { port, host } = this.settings;
    let address;
    try {
      address = await this.server.listen(port, host);
    } catch (error) {
      throw new Error(`cannot listen on ${host}:${port}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.note(`listening on ${this.settings.tls === undefined ? 'ws' : 'wss'}://${shown}:${address.port} (any path)`);
    if (this.terminal.interactive) this.note('lines you type go to every client; /help lists the commands; Ctrl-D stops');
  }

  async handleLine(line: string): Promise<void> {
    try {
      const input = parseInputLine(line);
      if (input.kind === 'message') await this.broadcast(input.text);
      else await this.command(input.name, input.args);
    } catch (error) {
      this.terminal.error(`sockeye: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Close every connection with 1001 (RFC 6455 §7.4.1: going away) and stop. */
  quit(): void {
    if (this.stopping) return;
    this.stopping = true;
    void this.server.close({ code: CloseCode.GoingAway, reason: 'server stopped' }).then(() => this.resolveExit(0));
  }

  /** Ctrl-C or SIGTERM: stop gracefully, or at once when asked twice. */
  interrupt(): void {
    if (!this.stopping) {
      this.quit();
      return;
    }
    for (const connection of this.clients.values()) connection.terminate('interrupted');
    this.resolveExit(130);
  }

  private opened(connection: Connection<Client>): void {
    const client = connection.context;
    client.id = this.nextId++;
    client.since = Date.now();
    const address = connection.remoteAddress ?? '?';
    client.tag = `[#${client.id} ${address.includes(':') ? `[${address}]` : address}:${connection.remotePort ?? '?'}]`;
    this.clients.set(client.id, connection);
    if (this.settings.trace) connection.on('wire', (frame) => this.print(`${client.tag} ${formatWireFrame(frame)}`));
    if (this.settings.showPingPong) {
      connection.on('ping', (payload) => this.print(`${client.tag} < ping${describeControlPayload(payload)}`));
    }
    // A pong with a round-trip time answers a /ping (heartbeat pings have none): printed
    // from the event rather than the ping's promise, so it appears in arrival order.
    connection.on('pong', (payload, rtt) => {
      if (rtt !== undefined) this.print(`${client.tag} < pong${describeControlPayload(payload)} in ${formatRtt(rtt)}`);
      else if (this.settings.showPingPong) this.print(`${client.tag} < pong${describeControlPayload(payload)}`);
    });
    const details = [
      connection.protocol === '' ? null : `subprotocol ${connection.protocol}`,
      connection.extensions === '' ? null : `extensions ${connection.extensions}`,
    ].filter((d) => d !== null);
    this.print(`${client.tag} * connected: ${client.path}${details.length > 0 ? ` (${details.join('; ')})` : ''}`);
  }

  private closed(connection: Connection<Client>, info: CloseInfo): void {
    const client = connection.context;
    this.clients.delete(client.id);
    const cause = info.error === undefined || info.error.message === info.reason ? '' : `: ${oneLine(info.error.message, 120)}`;
    const how = info.wasClean ? '' : ` (not clean${cause})`;
    const who =
      info.initiator === 'local' ? 'closed by us'
      : info.initiator === 'remote' ? 'closed by the client'
      : 'lost';
    this.print(`${client.tag} * disconnected, ${who}: ${describeClose(info.code, info.reason)}${how}`);
  }

  // ---- commands --------------------------------------------------------------

  private async command(name: string, args: string): Promise<void> {
    switch (name) {
      case 'help':
        this.print(SLASH_HELP);
        return;
      case 'clients':
        this.listClients();
        return;
      case 'to': {
        const [which, text] = firstWord(args);
        const connection = this.client(which);
        this.print(formatMessage(`${connection.context.tag} >`, text, false, { json: this.settings.json }));
        await this.sendTo([connection], text);
        return;
      }
      case 'kick': {
        const [which, rest] = firstWord(args);
        const connection = this.client(which);
        const { code, reason } = parseCloseArgs(rest, CloseCode.Normal);
        this.print(`${connection.context.tag} * closing: ${describeClose(code, reason)}`);
        connection.close(code, reason);
        return;
      }
      case 'drop': {
        const connection = this.client(firstWord(args)[0]);
        this.print(`${connection.context.tag} * dropping the TCP connection`);
        connection.terminate('dropped with /drop');
        return;
      }
      case 'ping':
        this.ping(args.trim());
        return;
      case 'binary': {
        const path = args.trim();
        if (path === '') throw new Error('usage: /binary FILE');
        const bytes = await readFile(path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path);
        const targets = this.everyone();
        if (targets.length === 0) return;
        this.print(`[all ${targets.length}] > ${describeBinary(bytes)}`);
        await this.sendTo(targets, bytes);
        return;
      }
      case 'quit':
      case 'exit':
        this.quit();
        return;
      default:
        throw new Error(`unknown command /${name}: /help lists the commands; start a message with // to send "/${name}..."`);
    }
  }

  private async broadcast(text: string): Promise<void> {
    const targets = this.everyone();
    if (targets.length === 0) return;
    if (!this.terminal.interactive) this.print(formatMessage(`[all ${targets.length}] >`, text, false, { json: this.settings.json }));
    await this.sendTo(targets, text);
  }

  /** Connected clients, or an empty list after saying that there are none. */
  private everyone(): Connection<Client>[] {
    const targets = [...this.clients.values()];
    if (targets.length === 0) this.note('no clients connected; nothing sent');
    return targets;
  }

  private async sendTo(targets: Connection<Client>[], data: SendData): Promise<void> {
    const slow: Promise<void>[] = [];
    for (const connection of targets) {
      const status = connection.send(data);
      if (status === 'written' || status === 'queued') connection.context.sent++;
      if (status === 'queued') slow.push(connection.drained());
    }
    // Typed or piped input waits for slow readers rather than piling up in memory.
    await Promise.all(slow);
  }

  private ping(which: string): void {
    const targets = which === '' ? this.everyone() : [this.client(which)];
    for (const connection of targets) {
      const tag = connection.context.tag;
      connection.ping().catch((error: unknown) => {
        this.terminal.error(`sockeye: ${tag} ping: ${error instanceof Error ? error.message : String(error)}`);
      });
    }
  }

  private listClients(): void {
    if (this.clients.size === 0) {
      this.note('no clients connected');
      return;
    }
    const now = Date.now();
    const lines = [...this.clients.values()].map(({ context: c }) => {
      const seconds = Math.round((now - c.since) / 1000);
      return `*   ${c.tag} ${c.path}, connected ${seconds} s ago, ${c.received} received, ${c.sent} sent`;
    });
    this.print([`* ${this.clients.size} connected:`, ...lines].join('\n'));
  }

  /** Client `N` or `#N`, which must be connected. */
  private client(which: string): Connection<Client> {
    const id = Number(which.replace(/^#/, ''));
    const connection = Number.isInteger(id) ? this.clients.get(id) : undefined;
    if (connection === undefined)
      throw new Error(which === '' ? 'which client? (see /clients)' : `no client #${which.replace(/^#/, '')} (see /clients)`);
    return connection;
  }

  private print(text: string): void {
    this.terminal.print(text);
  }

  private note(text: string): void {
    this.terminal.print(`* ${text}`);
  }
}
