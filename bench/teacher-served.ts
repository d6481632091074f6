// Served-teacher benchmark: `runTeacher` over the vLLM backend against a bare request loop (POST the same
// bodies, JSON.parse the replies, nothing else) on the same local stand-in server in the same run (goal: the
// runner at ≥ 0.95 of the loop), throughput against requests in flight, and bytes on the wire per position.
// Run: npm run build:ts && npx tsx bench/teacher-served.ts [--quick] [--record]   (--record rewrites the
// `## teacher served` section of docs/benchmarks.md; BENCH_N=<sequences> sets the size). The server is a
// process of its own and answers from a reply cache filled by a warm-up pass, so the client side is timed.
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import PQueue from 'p-queue';
import type * as Api from '../src/index.js';
import type * as Backends from '../src/teacher/backends/index.js';
import { corpusDataset } from '../test/teacher/helpers/cache.js';
import { machineLine, recordSection, table } from './record.js';
import { benchTempDir } from './temp.js';
import { benchArgs } from './args.js';

const dist = path.resolve('dist/src/index.js');
if (!existsSync(dist)) throw new Error('dist/ is missing: run `npm run build:ts` first');
const { runTeacher } = (await import(dist)) as typeof Api;
const { vllmProtocol } = (await import(path.resolve('dist/src/teacher/backends/index.js'))) as typeof Backends;

const values = benchArgs(import.meta.url, {
  quick: { type: 'boolean', default: false },
  record: { type: 'boolean', default: false },
});
const quick = values.quick,
  record = values.record;
const T = 64;
const K = 20;
const B = 4;
const SHARDS = 4;
const N = Number(process.env.BENCH_N ?? (quick ? 32 : 1024));
const ROUNDS = quick ? 1 : 5;
const IN_FLIGHT = quick ? [1, 4] : [1, 2, 4, 8, 16];
const MODEL = 'fixture-teacher';
const positions = N * T;

// The stand-in server, in its own process, with replies cached by request body.
const server = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    'test/teacher/helpers/served-teacher-main.ts',
    JSON.stringify({ protocol: 'vllm', servedModel: MODEL, maxLogprobs: 64, cacheReplies: true }),
  ],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
const lines = createInterface({ input: server.stdout })[Symbol.asyncIterator]();
const nextLine = async () => JSON.parse(String((await lines.next()).value)) as Record<string, number | string>;
const { url } = (await nextLine()) as { url: string };
const serverStats = async () => {
  server.stdin.write('stats\n');
  return (await nextLine()) as Record<string, number>;
};

const dir = benchTempDir('distill-bench-served-');
const data = path.join(dir, 'd.arrow');
const tokens = corpusDataset(data, N, T);

/** The request bodies the runner sends: B consecutive sequences each (shards hold multiples of B). */
const bodies = (k: number) =>
  Array.from({ length: N / B }, (_, i) =>
    vllmProtocol.scoreBody(MODEL, tokens.subarray(i * B * T, (i + 1) * B * T), B, T, k),
  );

const agent = new http.Agent({ keepAlive: true });
function post(body: string, parse = true): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/v1/completions`, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        if (parse) JSON.parse(bytes.toString('utf8'));
        resolve(bytes.length);
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The bare loop: every body POSTed with `inFlight` at once, each reply parsed (or, with parse off, only read). */
async function bare(
  list: string[],
  inFlight: number,
  parse = true,
): Promise<{ pps: number; bytesOut: number; bytesIn: number }> {
  const queue = new PQueue({ concurrency: inFlight });
  let bytesIn = 0;
  const t0 = performance.now();
  await Promise.all(
    list.map((b) =>
      queue.add(async () => {
        const n = await post(b, parse);
        bytesIn += n;
      }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  const bytesOut = list.reduce((a, b) => a + Buffer.byteLength(b), 0);
  return { pps: positions / seconds, bytesOut, bytesIn };
}

/** The runner over the vLLM backend: steady state from `inference started` to the end, and the whole run. */
async function runner(inFlight: number): Promise<{ steady: number; whole: number }> {
  const out = path.join(dir, `c-${Math.random().toString(36).slice(2)}`);
  let started = 0;
  const t0 = performance.now();
  await runTeacher({
    backend: 'vllm',
    endpoints: [url],
    servedModel: MODEL,
    data,
    out,
    topK: K,
    shards: SHARDS,
    batchSize: B,
    maxInFlight: inFlight,
    onProgress: (e) => {
      if (e.message === 'inference started') started = performance.now();
    },
  });
  const end = performance.now();
  rmSync(out, { recursive: true, force: true });
  return { steady: positions / ((end - started) / 1000), whole: positions / ((end - t0) / 1000) };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};
const f0 = (x: number) => x.toFixed(0);
const f3 = (x: number) => x.toFixed(3);

// Warm-up: the runner's pass fills the server's reply cache (and the bare loop's bodies are the same requests).
await runner(4);
const list = bodies(K);
await bare(list, 4);

const rows: string[][] = [];
for (const c of IN_FLIGHT) {
  const bareRuns: number[] = [];
  const ioRuns: number[] = [];
  const steady: number[] = [];
  const whole: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which goes first, so a burst of other work lands on one side of one round.
    const first = r % 2 === 0;
    const a = first ? (await bare(list, c)).pps : 0;
    const run = await runner(c);
    const b = first ? a : (await bare(list, c)).pps;
    bareRuns.push(b);
    ioRuns.push((await bare(list, c, false)).pps);
    steady.push(run.steady);
    whole.push(run.whole);
    ratios.push(run.steady / b);
  }
  rows.push([
    String(c),
    f0(Math.max(...ioRuns)),
    f0(Math.max(...bareRuns)),
    f0(Math.max(...steady)),
    f3(Math.max(...steady) / Math.max(...bareRuns)),
    f3(median(ratios)),
    f0(median(whole)),
  ]);
}

// Bytes on the wire per position (bodies; HTTP headers add ≈ 150–250 bytes per request on top).
const wire = [K, 64].map((k) => ({ k, list: bodies(k) }));
const wireRows: string[][] = [];
for (const { k, list: l } of wire) {
  const r = await bare(l, 4);
  wireRows.push([String(k), (r.bytesOut / positions).toFixed(1), (r.bytesIn / positions).toFixed(1)]);
}
const stats = await serverStats();

const md = [
  `Stand-in vLLM server (test/teacher/helpers/served-teacher.ts, its own process, replies cached after a warm-up pass) on the fixture teacher (V = 257); k = ${K}, T = ${T}, ${B} sequences per request, ${N} sequences (${positions} positions, ${SHARDS} shards) per run. The bare loop POSTs the same bodies with the same requests in flight and parses each reply on its one thread; the runner parses and validates every reply on its parser threads (${'`'}parseThreads${'`'}, default: the cores left after the main thread, at most 4) and writes the cache on the main thread (float32 log-probabilities, local disk); "bytes only" reads the replies without parsing them (the HTTP ceiling of one thread). ${ROUNDS} rounds per setting, alternating which goes first; "steady" runs from the runner's \`inference started\` event (after its start-up checks) to the end.`,
  '',
  table(
    [
      'requests in flight',
      'bytes only (read, not parsed), positions/s (best)',
      'bare loop, positions/s (best)',
      'runner steady, positions/s (best)',
      'runner ÷ bare, best ÷ best',
      'runner ÷ bare, median of rounds',
      'runner whole run, positions/s (median)',
    ],
    rows,
  ),
  '',
  'Bytes on the wire per position (request and reply bodies of POST /v1/completions, prompt_logprobs = logprobs = k):',
  '',
  table(['k', 'request bytes/position', 'reply bytes/position'], wireRows),
  '',
  `Server side: ${stats.scoring} scoring requests answered in this run.`,
].join('\n');
console.log(md);

if (record) {
  const file = recordSection(
    'teacher served',
    `Machine: ${machineLine()}. Date: ${new Date().toISOString().slice(0, 10)}. Command: \`npm run build:ts && npx tsx bench/teacher-served.ts${quick ? ' --quick' : ''} --record\`\n\n${md}`,
  );
  console.log(`recorded in ${file}`);
}
server.stdin.end();
agent.destroy();
