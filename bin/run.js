#!/usr/bin/env node
// The `distill` command-line entry point (oclif).
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
