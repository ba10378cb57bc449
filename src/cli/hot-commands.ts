/**
 * Commands that bin/run.js hands to oclif on their own. Without a manifest, oclif imports every
 * command to list them before it runs one (about a third of a second); `backup`, which a
 * schedule may run every few minutes (PTRACK), should not pay for the other fifteen. oclif reads
 * this module as an "explicit" command list; `--help` and errors work as usual.
 */
import Backup from '../commands/backup.js';

export default { backup: Backup };
