// The stand-in teacher server as a process of its own (benchmarks: its CPU is not the client's): options as
// JSON in argv[2], prints {"url"} on stdout once listening, prints its stats and leaves when stdin closes.
import { startStandIn, type StandInOptions } from './served-teacher.js';

const opts = JSON.parse(process.argv[2] ?? '{"protocol":"vllm"}') as StandInOptions;
const srv = await startStandIn(opts);
process.stdout.write(`${JSON.stringify({ url: srv.url })}\n`);
process.stdin.on('data', (d) => {
  if (String(d).trim() === 'stats') process.stdout.write(`${JSON.stringify(srv.stats)}\n`);
});
process.stdin.on('end', () => void srv.close().then(() => process.exit(0)));
