// The one shard scheduler: a p-queue hands shard indices to whichever worker has a free slot (each worker
// holds SHARDS_IN_FLIGHT). A worker is the in-process one (a run of one worker) or a worker process
// (worker-proc.ts) with its own backend and cache writer, one per device slot.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import PQueue from 'p-queue';
import { DistillError } from '../core/errors.js';
import { deviceName, fromWireError, type Device, type WireError } from './backends/index.js';
import type { Shard } from './plan.js';
import type { ResolvedRun } from './prepare.js';
import { runShard, SHARDS_IN_FLIGHT, type ShardDone, type WorkerContext } from './work.js';

export interface ShardWorker {
  name: string;
  run(shard: Shard, onRows: (n: number) => void): Promise<ShardDone>;
  close(): Promise<void>;
}

/** The in-process worker: the run's own backend and writer. */
export function localWorker(ctx: WorkerContext, name: string): ShardWorker {
  return {
    name,
    run: (shard, onRows) => runShard(ctx, shard, onRows),
    close: () => ctx.backend.close(),
  };
}

/** Messages a worker process sends (worker-proc.ts). */
export type ProcMessage =
  | { type: 'ready' }
  | { type: 'rows'; shard: number; n: number }
  | { type: 'done'; result: ShardDone }
  | { type: 'error'; shard?: number; error: WireError };

/** Messages a worker process receives. */
export type ProcCommand =
  | { type: 'init'; run: ResolvedRun; device: Device; threads?: number }
  | { type: 'shard'; shard: Shard }
  | { type: 'exit' };

function entry(): { file: string; execArgv: string[] } {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.ts')) return { file: self.replace(/pool\.ts$/, 'worker-proc.ts'), execArgv: ['--import', 'tsx'] };
  return { file: self.replace(/pool\.js$/, 'worker-proc.js'), execArgv: [] };
}

interface InFlight {
  resolve: (d: ShardDone) => void;
  reject: (e: Error) => void;
  onRows: (n: number) => void;
}

/** A worker process, started and ready (its backend warm) when the promise resolves. */
function startProcess(
  i: number,
  init: Omit<Extract<ProcCommand, { type: 'init' }>, 'type'>,
  started: ChildProcess[],
): Promise<ShardWorker> {
  const { file, execArgv } = entry();
  const child = fork(file, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
  started.push(child);
  const name = `worker ${i} (${deviceName(init.device)})`;
  const current = new Map<number, InFlight>();
  const send = (m: ProcCommand) => child.send(m);
  return new Promise<ShardWorker>((ready, failed) => {
    child.on('message', (m: ProcMessage) => {
      if (m.type === 'ready') ready(worker);
      else if (m.type === 'rows') current.get(m.shard)?.onRows(m.n);
      else if (m.type === 'done') {
        current.get(m.result.shard)?.resolve(m.result);
        current.delete(m.result.shard);
      } else {
        const e = fromWireError(m.error, name);
        const c = m.shard !== undefined ? current.get(m.shard) : undefined;
        if (m.shard !== undefined) current.delete(m.shard);
        if (c) c.reject(e);
        else failed(e);
      }
    });
    child.on('exit', (code, signal) => {
      const e = new DistillError('E_DEVICE', `${name} exited unexpectedly`, {
        found: signal ? `signal ${signal}` : `exit code ${code}`,
        hint: 'committed shards are kept; rerun to resume',
        subject: name,
      });
      failed(e);
      for (const c of current.values()) c.reject(e);
      current.clear();
    });
    const worker: ShardWorker = {
      name,
      run: (shard, onRows) =>
        new Promise<ShardDone>((resolve, reject) => {
          current.set(shard.index, { resolve, reject, onRows });
          send({ type: 'shard', shard });
        }),
      close: () => stopProcess(child),
    };
    send({ type: 'init', ...init });
  });
}

/** Asks a worker process to leave; one that has not left within 10 s is killed (nothing of it is committed unless it said so). */
function stopProcess(child: ChildProcess): Promise<void> {
  child.removeAllListeners('exit');
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  if (child.connected) child.send({ type: 'exit' } satisfies ProcCommand);
  return new Promise<void>((r) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => (clearTimeout(t), r()));
  });
}

/** Starts `n` worker processes (worker i on device i mod |devices|); if any fails to start, all are stopped. */
export async function startProcessWorkers(o: {
  run: ResolvedRun;
  devices: Device[];
  n: number;
  threads?: number;
}): Promise<ShardWorker[]> {
  const children: ChildProcess[] = [];
  const started = await Promise.allSettled(
    Array.from({ length: o.n }, (_, i) =>
      startProcess(
        i,
        { run: o.run, device: o.devices[i % o.devices.length] ?? { kind: 'cpu' }, threads: o.threads },
        children,
      ),
    ),
  );
  const bad = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (bad) {
    await Promise.all(children.map(stopProcess));
    throw bad.reason;
  }
  return started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
}

/**
 * Runs every shard on the workers, SHARDS_IN_FLIGHT at a time per worker, so a worker's backend never waits
 * on a shard's commit. The first failure stops new shards from starting (those in flight finish and commit);
 * it is thrown once the queue is idle. An aborted `signal` stops new shards the same way, without an error. Results come back in shard order.
 */
export async function runPool(
  workers: ShardWorker[],
  shards: Shard[],
  onRows: (n: number) => void,
  signal?: AbortSignal,
): Promise<ShardDone[]> {
  const idle = workers.flatMap((w) => Array.from({ length: SHARDS_IN_FLIGHT }, () => w));
  const waiters: Array<(w: ShardWorker) => void> = [];
  const acquire = () => {
    const w = idle.pop();
    return w ? Promise.resolve(w) : new Promise<ShardWorker>((r) => waiters.push(r));
  };
  const release = (w: ShardWorker) => {
    const next = waiters.shift();
    if (next) next(w);
    else idle.push(w);
  };
  const queue = new PQueue({ concurrency: Math.max(1, idle.length) });
  const results: ShardDone[] = [];
  let firstError: unknown;
  let failed = false;
  for (const shard of shards) {
    void queue.add(async () => {
      if (failed || signal?.aborted) return;
      const w = await acquire();
      try {
        results.push(await w.run(shard, onRows));
      } catch (e) {
        if (!failed) firstError = e;
        failed = true;
      } finally {
        release(w);
      }
    });
  }
  await queue.onIdle();
  if (failed) throw firstError;
  return results.sort((a, b) => a.shard - b.shard);
}
