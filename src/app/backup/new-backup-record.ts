/**
 * The record of a backup about to start (phase 2 of take-backup.ts): RUNNING, owned by this
 * process, with what the server and the instance's settings say; its LSNs, sizes and metrics
 * are filled in as the backup goes.
 */
import { hostname } from 'node:os';
import { newBackupId } from '../../core/backup-id.js';
import type { BackupMode, BackupRecord, CompressAlg } from '../../core/backup-types.js';
import type { ServerIdentity } from '../../postgres/backup-session.js';
import { PROGRAM_VERSION } from '../program-version.js';
import type { RepoContext } from '../repo-context.js';

export interface NewBackupFacts {
  instance: string;
  mode: BackupMode;
  stream: boolean;
  note?: string | undefined;
  parentId: string | null;
  server: ServerIdentity;
  compression: { alg: CompressAlg; level: number };
}

export function newBackupRecord(ctx: RepoContext, f: NewBackupFacts, startTime = new Date()): BackupRecord {
  const s = f.server;
  return {
    id: newBackupId(startTime, new Set(ctx.catalog.backupIds(f.instance))),
    instance: f.instance,
    mode: f.mode,
    status: 'RUNNING',
    parentId: f.parentId,
    timeline: s.timeline,
    startLsn: 0n,
    stopLsn: null,
    startTime,
    endTime: null,
    recoveryTime: null,
    recoveryXid: null,
    dataBytes: 0,
    storedBytes: 0,
    pgdataBytes: 0,
    walBytes: 0,
    compressAlg: f.compression.alg,
    compressLevel: f.compression.level,
    stream: f.stream,
    serverVersion: s.serverVersion,
    serverVersionNum: s.serverVersionNum,
    programVersion: PROGRAM_VERSION,
    note: f.note ?? null,
    systemIdentifier: s.systemIdentifier,
    blockSize: s.blockSize,
    walSegSize: s.walSegSize,
    checksumsEnabled: s.checksumsEnabled,
    ownerPid: process.pid,
    ownerHost: hostname(),
    changeSource: null,
    error: null,
    metrics: null,
    generation: 0,
  };
}
