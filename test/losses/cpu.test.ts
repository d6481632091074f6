// The loss contract on the native CPU backend (the real addon), against the float64 reference, at every SIMD level
// of the rows kernel this machine has (the levels round differently: each meets the same tolerance).
import { describeEachSimdLevel } from '../helpers/simd.js';
import { runContract } from './contract.js';
import { F32 } from './helpers.js';

describeEachSimdLevel('cpu loss rows', () => runContract('cpu', F32));
