/**
 * The pure rules of resuming an interrupted backup (docs/resume.md): which ERROR backup a new
 * one may resume, when the interrupted attempt fits the new one, and which stored files are
 * candidates for reuse. The I/O half (reading the journal, reading pages, linking) lives in
 * app/backup/resume-plan.ts.
 */
import type { BackupMode, BackupRecord, CompressAlg, FileStorage } from './backup-types.js';
import { formatLsn, type Lsn } from './lsn.js';

/** What an attempt records in its journal header: everything a resumed run must agree with. */
export interface ResumeAttempt {
  backupId: string;
  instance: string;
  mode: BackupMode;
  parentId: string | null;
  /** The attempt's own start LSN (its pg_backup_start). */
  startLsn: Lsn;
  timeline: number;
  systemIdentifier: string;
  compressAlg: CompressAlg;
  compressLevel: number;
  blockSize: number;
  /** The backup this attempt itself resumed, if any (removed too once a resume succeeds). */
  resumedFrom: string | null;
}

/** The same facts about the backup about to start. */
export type AttemptFacts = Pick<ResumeAttempt, 'mode' | 'parentId' | 'timeline' | 'systemIdentifier' | 'compressAlg' | 'compressLevel' | 'blockSize'>;

/**
 * ERROR backups a new backup of `mode` (with `parentId` for incremental modes) may resume,
 * newest first. Whether one has a journal is for the caller to find out.
 */
export function resumeCandidates(backups: readonly BackupRecord[], mode: BackupMode, parentId: string | null): BackupRecord[] {
  return backups
    .filter((b) => b.status === 'ERROR' && b.mode === mode && (mode === 'FULL' || b.parentId === parentId))
    .sort((a, b) => b.startTime.getTime() - a.startTime.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/** Why the interrupted attempt cannot be resumed by a backup with `now`'s facts; undefined when it can. */
export function resumeIncompatibility(old: ResumeAttempt, now: AttemptFacts): string | undefined {
  if (old.systemIdentifier !== now.systemIdentifier) return `it was taken of system ${old.systemIdentifier}, the server is system ${now.systemIdentifier}`;
  if (old.mode !== now.mode) return `it is a ${old.mode} backup, this one is ${now.mode}`;
  if (old.timeline !== now.timeline) return `it was taken on timeline ${old.timeline}, the server is on timeline ${now.timeline}`;
  if ((old.parentId ?? null) !== (now.parentId ?? null)) return `its parent is ${old.parentId ?? 'none'}, this backup's is ${now.parentId ?? 'none'}`;
  if (old.compressAlg !== now.compressAlg || old.compressLevel !== now.compressLevel) {
    return `it was compressed with ${old.compressAlg} level ${old.compressLevel}, this backup uses ${now.compressAlg} level ${now.compressLevel}`;
  }
  if (old.blockSize !== now.blockSize) return `its block size is ${old.blockSize}, the server's is ${now.blockSize}`;
  return undefined;
}

/**
 * Whether a stored file of the interrupted attempt, held as `storage`, may be reused by a
 * backup of `mode`. FULL and DELTA read every page of a file anyway, so a whole file or a page
 * delta (relative to the same parent) is a candidate. PAGE and PTRACK read only the pages their
 * change map lists: checking a delta would read the whole file, more than copying it, so only
 * whole files (relations the parent does not know, read whole in any case) are candidates.
 */
export function mayReuseStorage(mode: BackupMode, storage: FileStorage): boolean {
  if (storage === 'full') return true;
  return storage === 'delta' && (mode === 'FULL' || mode === 'DELTA');
}

/**
 * A page allows its file's stored copy to be reused unless a WAL-logged change touched it since
 * the interrupted attempt started: its LSN is below that attempt's start LSN. LSN 0 (a zero
 * page: extended and not yet written, or standing where a truncated page was) carries no word
 * from WAL either way, and is left to the content checksum, which the caller compares too:
 * refusing it kept out every file a bulk load (COPY, from PostgreSQL 16) or an extension under
 * concurrency had left zero pages in.
 */
export function pageUnchangedSince(pageLsn: Lsn, attemptStartLsn: Lsn): boolean {
  return pageLsn < attemptStartLsn;
}

/** One line for the INFO output: what was reused. */
export function describeReuse(files: number, bytes: number, fromId: string, fromStart: Lsn): string {
  return `${files} files (${bytes} bytes) reused from interrupted backup ${fromId} (started at LSN ${formatLsn(fromStart)})`;
}
