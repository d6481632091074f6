// Worker process entry for the local pool: opens its backend on one device and a cache writer, then runs
// the shard indices the parent sends (SHARDS_IN_FLIGHT at a time), reporting rows as they stream.
import { toWireError } from './backends/index.js';
import type { ProcCommand, ProcMessage } from './pool.js';
import { openWorker, runShard, type WorkerContext } from './work.js';

const send = (m: ProcMessage) => {
  if (!process.send) throw new Error('worker-proc.ts runs as a worker process (forked by the pool)');
  process.send(m);
};
let ctx: WorkerContext | undefined;

async function handle(m: ProcCommand): Promise<void> {
  if (m.type === 'init') {
    ctx = await openWorker(m.run, m.device, m.threads);
    send({ type: 'ready' });
  } else if (m.type === 'shard') {
    if (!ctx) throw new Error('shard before init');
    const shard = m.shard.index;
    const result = await runShard(ctx, m.shard, (n) => send({ type: 'rows', shard, n }));
    send({ type: 'done', result });
  } else {
    await ctx?.backend.close();
    process.disconnect();
    setImmediate(() => process.exit(0));
  }
}

process.on('message', (m: ProcCommand) => {
  handle(m).catch((e) =>
    send({ type: 'error', shard: m.type === 'shard' ? m.shard.index : undefined, error: toWireError(e) }),
  );
});

// Ctrl-C reaches the whole process group: the parent stops the run at a shard boundary and closes its workers,
// so a worker ignores the signal and finishes its shard; it ends with the parent's channel, however that ends.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => process.exit(0));
