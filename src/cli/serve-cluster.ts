import cluster, { type Address, type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';

/**
 * `sockeye serve --workers N`: the primary process of a node:cluster. It
 * runs no server itself; it starts N workers (each the same `sockeye serve`
 * command, sharing the listening port through the primary), reports the
 * address once every worker listens, replaces a worker that dies after it
 * started, and stops them all with SIGTERM (each closes its WebSockets with
 * 1001, as a single process does).
 *
 * Workers share nothing but the port: every piece of application state
 * lives in Redis (`--redis`), which is why `serve` refuses `--workers`
 * without it.
 */

export interface ClusterOptions {
  workers: number;
  /** Milliseconds a stopping worker gets before SIGKILL. Default 15 s (above the close timeout). */
  stopTimeoutMs?: number;
  /** Where notices go (a worker replaced, a worker that failed to start). */
  log: (line: string) => void;
}

export interface RunningCluster {
  /** The address the workers share. */
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** A worker that exits this soon after a replacement started is failing repeatedly: stop replacing. */
const MAX_RESTARTS_PER_MINUTE = 10;

/**
 * Fork the workers and resolve once all of them listen; reject if one exits
 * before it listens (a bad option, Redis unreachable at start): the others
 * are stopped, and what the worker printed on its standard error says why.
 */
export function startCluster(options: ClusterOptions): Promise<RunningCluster> {
  const stopTimeoutMs = options.stopTimeoutMs ?? 15_000;
  const workers = new Set<Worker>();
  const restarts: number[] = [];
  let stopping = false;
  let address: AddressInfo | null = null;

  const stopAll = async (): Promise<void> => {
    stopping = true;
    await Promise.all([...workers].map((worker) => stopWorker(worker, stopTimeoutMs)));
  };

  return new Promise<RunningCluster>((resolve, reject) => {
    let listening = 0;
    let started = false;

    const fork = (): void => {
      const worker = cluster.fork();
      workers.add(worker);
      let workerListening = false;
      worker.once('listening', (bound: Address) => {
        workerListening = true;
        if (started) {
          options.log(`worker ${worker.process.pid} replaced the one that exited`);
          return;
        }
        address ??= { address: bound.address ?? '127.0.0.1', port: bound.port, family: bound.addressType === 6 ? 'IPv6' : 'IPv4' };
        listening++;
        if (listening === options.workers) {
          started = true;
          resolve({ address, close: stopAll });
        }
      });
      worker.once('exit', (code, signal) => {
        workers.delete(worker);
        if (stopping) return;
        const how = signal !== null ? `signal ${signal}` : `status ${code ?? '?'}`;
        if (!workerListening && !started) {
          void stopAll().then(() => reject(new Error(`a worker exited before it listened (${how}); see its message above`)));
          return;
        }
        const now = Date.now();
        while (restarts.length > 0 && now - restarts[0]! > 60_000) restarts.shift();
        if (restarts.length >= MAX_RESTARTS_PER_MINUTE) {
          options.log(
            `worker ${worker.process.pid} exited (${how}); ${MAX_RESTARTS_PER_MINUTE} replacements within a minute already, not replacing it`,
          );
          return;
        }
        restarts.push(now);
        options.log(`worker ${worker.process.pid} exited (${how}); starting a replacement`);
        fork();
      });
    };

    for (let i = 0; i < options.workers; i++) fork();
  });
}

async function stopWorker(worker: Worker, timeoutMs: number): Promise<void> {
  if (worker.isDead()) return;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.process.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), timeoutMs);
  });
  const tooLate = await Promise.race([exited.then(() => false), late]);
  clearTimeout(timer);
  if (tooLate) {
    worker.process.kill('SIGKILL');
    await exited;
  }
}
