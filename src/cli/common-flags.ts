/**
 * Flags that many commands share, as oclif's flags, made from their specs in common-flag-specs.ts
 * (which the backup fast path parses without oclif).
 */
import { connectionFlagSpecs, progressFlagSpec, repoFlagSpec, threadsFlagSpec, waitFlagSpec } from './common-flag-specs.js';
import { oclifFlag, oclifFlags } from './oclif-flags.js';

export const repoFlag = oclifFlag(repoFlagSpec);
export const connectionFlags = oclifFlags(connectionFlagSpecs);
export const threadsFlag = oclifFlag(threadsFlagSpec);
export const waitFlag = oclifFlag(waitFlagSpec);
export const progressFlag = oclifFlag(progressFlagSpec);
