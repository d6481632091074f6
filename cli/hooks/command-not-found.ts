// oclif `command_not_found` hook: an unknown command is one line with a code and the nearest command,
// like every other usage mistake, instead of oclif's bare "command not found".
import { toConfiguredId, type Hook } from '@oclif/core';
import { closest } from '../flags.js';

const hook: Hook.CommandNotFound = async function (opts) {
  const ids = opts.config.commandIDs.map((id) => toConfiguredId(id, opts.config));
  const typed = toConfiguredId(opts.id, opts.config);
  const guess = closest(typed, ids);
  const hint = guess ? `did you mean \`${opts.config.bin} ${guess}\`?` : `see \`${opts.config.bin} --help\``;
  process.stderr.write(`Error: [E_USAGE] unknown command \`${typed}\`. ${hint}\n`);
  this.exit(2);
};

export default hook;
