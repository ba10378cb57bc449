/**
 * The --recovery-target-* flags, shared by restore (which writes them into the restored cluster)
 * and validate (which checks that a restore could reach them), and their reading into the
 * RecoveryRequest the use cases take.
 */
import { Flags } from '@oclif/core';
import type { RecoveryRequest } from '../core/recovery-settings.js';

export const recoveryTargetFlags = {
  'recovery-target': Flags.string({ options: ['immediate', 'latest'], description: 'immediate: stop as soon as consistent; latest: replay the whole archive' }),
  'recovery-target-time': Flags.string({ description: 'stop at this commit time', helpValue: 'TIMESTAMPTZ' }),
  'recovery-target-lsn': Flags.string({ description: 'stop at this WAL position', helpValue: 'LSN' }),
  'recovery-target-xid': Flags.string({ description: 'stop at the commit of this transaction', helpValue: 'XID' }),
  'recovery-target-name': Flags.string({ description: 'stop at this restore point (pg_create_restore_point)', helpValue: 'NAME' }),
  'recovery-target-inclusive': Flags.boolean({ allowNo: true, description: 'stop just after the target (default) or, with --no-recovery-target-inclusive, just before' }),
  'recovery-target-timeline': Flags.string({ description: "timeline to follow: 'latest' (default), 'current' or a number" }),
};

export interface RecoveryTargetFlagValues {
  'recovery-target'?: string | undefined;
  'recovery-target-time'?: string | undefined;
  'recovery-target-lsn'?: string | undefined;
  'recovery-target-xid'?: string | undefined;
  'recovery-target-name'?: string | undefined;
  'recovery-target-inclusive'?: boolean | undefined;
  'recovery-target-timeline'?: string | undefined;
}

export function recoveryRequestFromFlags(flags: RecoveryTargetFlagValues): RecoveryRequest {
  return {
    target: flags['recovery-target'] as 'immediate' | 'latest' | undefined,
    time: flags['recovery-target-time'],
    lsn: flags['recovery-target-lsn'],
    xid: flags['recovery-target-xid'],
    name: flags['recovery-target-name'],
    inclusive: flags['recovery-target-inclusive'],
    timeline: flags['recovery-target-timeline'],
  };
}
