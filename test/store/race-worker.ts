// Child process for the racing-writers test: offers every shard of a 6-shard cache, prints outcomes as JSON.
import { openCacheWriter } from '../../src/store/index.js';
import { inputs, synthRows } from './helpers.js';

const [dir, name] = process.argv.slice(2) as [string, string];
const w = await openCacheWriter({ uri: dir, inputs: inputs({ sequences: 12 }), numShards: 6, writer: name });
const out: string[] = [];
for (let s = 0; s < 6; s++) out.push((await w.writeShard(s, [synthRows(s * 2, s * 2 + 2, 8, 5, 101, s)])).status);
process.stdout.write(JSON.stringify(out));
