// Worker process entry for the local pool: opens its session on one device and a cache writer, then
// runs the shard indices the parent sends, one at a time, reporting rows as they stream.
import type { Shard } from './plan.js';
import type { ResolvedRun } from './runner.js';
import { openWorker, runShard } from './runner.js';
import type { Device } from './session.js';

const serialize = (e: any) => ({
  message: e?.message ?? String(e),
  code: e?.code,
  details: e?.details ? { ...e.details, cause: undefined } : undefined,
});
let ctx: Awaited<ReturnType<typeof openWorker>> | undefined;

process.on(
  'message',
  async (
    m:
      | { type: 'init'; run: ResolvedRun; device: Device; threads?: number }
      | { type: 'shard'; shard: Shard }
      | { type: 'exit' },
  ) => {
    const shard = m.type === 'shard' ? m.shard.index : undefined;
    try {
      if (m.type === 'init') {
        ctx = await openWorker(m.run, m.device, m.threads);
        process.send!({ type: 'ready' });
      } else if (m.type === 'shard') {
        const result = await runShard(ctx!, ctx!.writer, ctx!.engine, m.shard, (n) =>
          process.send!({ type: 'rows', n }),
        );
        process.send!({ type: 'done', result });
      } else {
        await ctx?.engine.close();
        process.disconnect();
        setImmediate(() => process.exit(0));
      }
    } catch (e) {
      process.send!({ type: 'error', shard, error: serialize(e) });
    }
  },
);
