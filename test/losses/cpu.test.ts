// The loss contract on the native CPU backend (the real addon), against the float64 reference.
import { runContract } from './contract.js';
import { F32 } from './helpers.js';

runContract('cpu', F32);
