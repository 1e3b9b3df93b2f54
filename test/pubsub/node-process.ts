/**
 * Runs a fixture of test/pubsub/fixtures/ in a child process (through
 * vite-node, from source) and talks to it in JSON lines: broker-node.ts (a
 * bare RedisBroker driven by commands) or hub-node.ts (a hub on Redis behind
 * a WebSocket server, which announces its port).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const VITE_NODE = fileURLToPath(new URL('../../node_modules/.bin/vite-node', import.meta.url));

export interface NodeAnswer {
  type?: string;
  [key: string]: unknown;
}

export class BrokerNodeProcess {
  private readonly child: ChildProcess;
  private readonly answers: NodeAnswer[] = [];
  private waiter: (() => void) | null = null;
  private stderr = '';

  private constructor(child: ChildProcess) {
    this.child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.answers.push(JSON.parse(line) as NodeAnswer);
      } catch {
        return; // not ours (a library's log line)
      }
      this.waiter?.();
    });
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
  }

  /** A bare broker node, ready for commands. */
  static async start(url: string, presenceTtlMs: number): Promise<BrokerNodeProcess> {
    return (await BrokerNodeProcess.run('broker-node.ts', [url, String(presenceTtlMs)])).node;
  }

  /** A hub node serving WebSockets for `topic`; resolves with the port it listens on. */
  static async startHub(url: string, topic: string): Promise<{ node: BrokerNodeProcess; port: number }> {
    const { node, first } = await BrokerNodeProcess.run('hub-node.ts', [url, topic]);
    if (typeof first['port'] !== 'number') throw new Error(`the hub node announced no port: ${JSON.stringify(first)}`);
    return { node, port: first['port'] };
  }

  private static async run(name: string, args: string[]): Promise<{ node: BrokerNodeProcess; first: NodeAnswer }> {
    const child = spawn(VITE_NODE, [fixture(name), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const node = new BrokerNodeProcess(child);
    try {
      return { node, first: await node.next(20_000) };
    } catch (error) {
      await node.kill();
      throw error;
    }
  }

  /** Send a command; resolves with its answer (or throws what the node reported). */
  async send(command: Record<string, unknown>, timeoutMs = 10_000): Promise<NodeAnswer> {
    this.child.stdin!.write(`${JSON.stringify(command)}\n`);
    const answer = await this.next(timeoutMs);
    if (answer.type === 'error') throw new Error(String(answer.message));
    return answer;
  }

  kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGKILL');
    return exited;
  }

  private async next(timeoutMs: number): Promise<NodeAnswer> {
    const deadline = Date.now() + timeoutMs;
    while (this.answers.length === 0) {
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.child.exitCode !== null) {
        throw new Error(`broker node did not answer within ${timeoutMs} ms (exit ${this.child.exitCode}):\n${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 1000));
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = null;
    }
    return this.answers.shift()!;
  }
}
