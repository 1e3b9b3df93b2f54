/** Runs test/pubsub/fixtures/broker-node.ts in a child process (through vite-node, from source) and talks to it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const FIXTURE = fileURLToPath(new URL('./fixtures/broker-node.ts', import.meta.url));
const VITE_NODE = fileURLToPath(new URL('../../node_modules/.bin/vite-node', import.meta.url));

export interface NodeAnswer {
  type: string;
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

  static async start(url: string, presenceTtlMs: number): Promise<BrokerNodeProcess> {
    const child = spawn(VITE_NODE, [FIXTURE, url, String(presenceTtlMs)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const node = new BrokerNodeProcess(child);
    await node.next(20_000);
    return node;
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
