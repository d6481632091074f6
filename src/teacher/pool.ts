// Local worker pool: one worker process per device slot (W processes over the listed devices), each
// with its own session and cache writer; a p-queue hands shard indices to whichever worker is free.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import PQueue from 'p-queue';
import { DistillError, type ErrorCode } from '../core/errors.js';
import type { Shard } from './plan.js';
import { SHARDS_IN_FLIGHT, type ResolvedRun, type ShardDone } from './runner.js';
import { deviceName, type Device } from './session.js';

export interface PoolOptions {
  run: ResolvedRun;
  shards: Shard[];
  devices: Device[];
  workers: number;
  threads?: number;
  onRows?: (n: number) => void;
  /** Called once every worker process has its session up (and warmed). */
  onStarted?: () => void;
}

function entry(): { file: string; execArgv: string[] } {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.ts')) return { file: self.replace(/pool\.ts$/, 'worker-proc.ts'), execArgv: ['--import', 'tsx'] };
  return { file: self.replace(/pool\.js$/, 'worker-proc.js'), execArgv: [] };
}

function revive(e: any, where: string): Error {
  if (e?.code) {
    const err = new DistillError(e.code as ErrorCode, '', e.details ?? {});
    err.message = e.message;
    return err;
  }
  return new Error(`${where}: ${e?.message ?? e}`);
}

interface Proc {
  child: ChildProcess;
  device: Device;
  name: string;
  /** Shards in flight on this process, by index. */
  current: Map<number, { resolve: (d: ShardDone) => void; reject: (e: Error) => void }>;
}

async function startProc(i: number, o: PoolOptions, all: Proc[]): Promise<Proc> {
  const device = o.devices[i % o.devices.length]!;
  const { file, execArgv } = entry();
  const child = fork(file, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
  const proc: Proc = { child, device, name: `worker ${i} (${deviceName(device)})`, current: new Map() };
  all.push(proc);
  let ready!: () => void;
  let failed!: (e: Error) => void;
  const started = new Promise<void>((res, rej) => ((ready = res), (failed = rej)));
  child.on('message', (m: any) => {
    if (m.type === 'ready') ready();
    else if (m.type === 'rows') o.onRows?.(m.n);
    else if (m.type === 'done') {
      proc.current.get(m.result.shard)?.resolve(m.result);
      proc.current.delete(m.result.shard);
    } else if (m.type === 'error') {
      const e = revive(m.error, proc.name);
      const c = m.shard !== undefined ? proc.current.get(m.shard) : undefined;
      proc.current.delete(m.shard);
      if (c) c.reject(e);
      else failed(e);
    }
  });
  child.on('exit', (code, signal) => {
    const e = new DistillError('E_DEVICE', `${proc.name} exited unexpectedly`, {
      found: signal ? `signal ${signal}` : `exit code ${code}`,
      hint: 'committed shards are kept; rerun to resume',
      subject: proc.name,
    });
    failed(e);
    for (const c of proc.current.values()) c.reject(e);
    proc.current.clear();
  });
  child.send({ type: 'init', run: o.run, device, threads: o.threads });
  await started;
  return proc;
}

export async function runPool(o: PoolOptions): Promise<ShardDone[]> {
  const n = Math.min(o.workers, o.shards.length);
  const procs: Proc[] = [];
  // Every child, started or not, so a failed start is shut down too.
  const all: Proc[] = [];
  try {
    const started = await Promise.allSettled(Array.from({ length: n }, (_, i) => startProc(i, o, all)));
    for (const s of started) if (s.status === 'fulfilled') procs.push(s.value);
    const bad = started.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
    if (bad) throw bad.reason;
    o.onStarted?.();
    // Each process holds SHARDS_IN_FLIGHT slots so its inference never waits on a shard's commit.
    const idle = procs.flatMap((p) => Array.from({ length: SHARDS_IN_FLIGHT }, () => p));
    const waiters: Array<(p: Proc) => void> = [];
    const acquire = () => (idle.length ? Promise.resolve(idle.pop()!) : new Promise<Proc>((r) => waiters.push(r)));
    const release = (p: Proc) => (waiters.length ? waiters.shift()!(p) : idle.push(p));
    const queue = new PQueue({ concurrency: idle.length });
    const results: ShardDone[] = [];
    let firstError: Error | undefined;
    for (const shard of o.shards) {
      void queue.add(async () => {
        if (firstError) return;
        const p = await acquire();
        try {
          const r = await new Promise<ShardDone>((resolve, reject) => {
            p.current.set(shard.index, { resolve, reject });
            p.child.send({ type: 'shard', shard });
          });
          results.push(r);
          release(p);
        } catch (e) {
          firstError ??= e as Error;
        }
      });
    }
    await queue.onIdle();
    if (firstError) throw firstError;
    return results.sort((a, b) => a.shard - b.shard);
  } finally {
    for (const p of all) {
      p.child.removeAllListeners('exit');
      if (p.child.connected) p.child.send({ type: 'exit' });
    }
    await Promise.all(
      all.map((p) => {
        if (p.child.exitCode !== null || p.child.signalCode !== null) return undefined;
        return new Promise<void>((r) => {
          // A child that does not leave within 10 s of being asked is killed: nothing of it is committed unless it said so.
          const t = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
          p.child.once('exit', () => (clearTimeout(t), r()));
        });
      }),
    );
  }
}
