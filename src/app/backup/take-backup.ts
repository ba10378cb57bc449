/**
 * The backup use case (FULL and DELTA). Reads as its phases:
 *
 *   1. prepare   check the instance, the data directory and the server are the same cluster;
 *                for an incremental backup, choose the parent and load its manifest
 *   2. begin     lock the instance, record the backup RUNNING (repository, then catalog)
 *   3. start     reserve WAL with a temporary slot, start the non-exclusive backup
 *   4. copy      walk PGDATA, copy files in parallel (pages verified), pg_control last
 *   5. stop      stop the backup; store backup_label and tablespace_map from the stop call
 *   6. wal       stream mode: copy the WAL from start to stop LSN out of pg_wal; otherwise wait
 *                until the archive holds it (--archive-timeout)
 *   7. seal      write the manifest durably, then mark the backup DONE
 *   8. validate  re-read what was stored; OK (unless --no-validate)
 *
 * A failure anywhere marks the backup ERROR and rethrows: the repository never holds a DONE
 * backup whose bytes are not all durable. While copying, each stored file is journalled
 * (resume.jsonl); a failed backup keeps the files its journal names, so that the next backup of
 * the same kind can resume it (resume-plan.ts, docs/resume.md), and removes the rest.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { newBackupId } from '../../core/backup-id.js';
import type { BackupMode, BackupRecord, CompressAlg, FileEntry } from '../../core/backup-types.js';
import { formatLsn, walFileNamesBetween } from '../../core/lsn.js';
import { PgkeepError, isPgkeepError } from '../../errors.js';
import { BackupSession, timelineFromLabel } from '../../postgres/backup-session.js';
import type { ConnectionSettings } from '../../postgres/connection.js';
import { readControlSystemIdentifier } from './read-control.js';
import { assertDataDirectory, readPgdataOwner, walkPgdata, type SourceEntry } from '../../postgres/pgdata-walker.js';
import { backupDataKey, backupJournalKey, backupKey } from '../../repository/layout.js';
import { BackupJournalWriter } from '../../repository/backup-journal.js';
import { describeReuse } from '../../core/resume-rules.js';
import { chooseResume, describeResumeStart, FileReuse, finishResume, keepJournalledFiles } from './resume-plan.js';
import { writeManifest } from '../../repository/manifest.js';
import { StoredFileWriter } from '../../repository/stored-file.js';
import { lockInstance } from '../instance-locking.js';
import { saveBackup, type RepoContext } from '../repo-context.js';
import { PROGRAM_VERSION } from '../program-version.js';
import { readManifest } from '../../repository/manifest.js';
import { toFileMap } from '../../core/file-plan.js';
import { assertParentFits, chooseParent, likelyParent } from './choose-parent.js';
import { checkFreeSpace } from './check-free-space.js';
import { serverTimelinePath } from './server-timeline-path.js';
import { copySources, type CopyHooks, type IncrementalBase } from './copy-sources.js';
import { awaitArchivedSegments } from './await-archived-segments.js';
import { recordRecoveryPoint } from './recovery-point.js';
import { walChangeMap } from './change-maps/wal-change-map.js';
import { serverChangeMap } from './change-maps/server-change-map.js';
import { instanceConnection, instanceCompression } from '../instance-settings.js';
import { validateBackup } from '../validate/validate-backup.js';
import { type CopyTarget } from './copy-entry.js';
import type { PageCheckCounters } from './read-data-file.js';
import { figuresToMetrics, Meter, type OperationProgress } from '../progress.js';

export interface BackupRequest {
  instance: string;
  mode: BackupMode;
  stream: boolean;
  threads: number;
  compressAlg?: CompressAlg | undefined;
  compressLevel?: number | undefined;
  note?: string | undefined;
  /** Incremental modes: the parent backup (default: the newest OK one on the timeline). */
  parentId?: string | undefined;
  skipBlockValidation: boolean;
  validate: boolean;
  /** Without --stream: how long to wait for the backup's WAL to reach the archive. */
  archiveTimeoutSeconds?: number | undefined;
  /** --skip-space-check: do not compare the estimated size with the repository's free space. */
  skipSpaceCheck?: boolean | undefined;
  /** --wait: seconds to wait for the instance's lock (Infinity: no limit); undefined fails at once. */
  waitSeconds?: number | undefined;
  /** --resume (true), --no-resume (false), or undefined: resume a fitting interrupted backup if there is one. */
  resume?: boolean | undefined;
  connection: ConnectionSettings;
  /** Told each file as it is copied (and the validation's), for --progress. */
  progress?: OperationProgress | undefined;
}

export async function takeBackup(ctx: RepoContext, req: BackupRequest): Promise<BackupRecord> {
  // 1. prepare
  const instance = ctx.catalog.requireInstance(req.instance);
  await assertDataDirectory(instance.pgdata);
  const compression = instanceCompression(instance, req.compressAlg, req.compressLevel);
  // An incremental backup's parent is chosen once the server's timeline is known; the manifest
  // of the likely one is read while the server is reached (and read again if it was not it).
  const guess = req.mode === 'FULL' ? undefined : likelyParent(ctx, instance.name, req.parentId);
  const guessedManifest = guess && readManifest(ctx.store, guess.instance, guess.id, guess.generation);
  guessedManifest?.catch(() => undefined); // awaited below only if the guess was right
  const session = await BackupSession.open(instanceConnection(instance, req.connection));
  let lock: { release(): Promise<void> } | undefined;
  let record: BackupRecord | undefined;
  let journal: BackupJournalWriter | undefined;
  try {
    const id = session.identity;
    if (id.systemIdentifier !== instance.systemIdentifier) {
      throw new PgkeepError('SYSTEM_ID_MISMATCH', `the server reached is system ${id.systemIdentifier}, but instance ${instance.name} is system ${instance.systemIdentifier}`, 'connect to the instance\'s own server (-h/-p), or add the other cluster as a new instance');
    }
    const pgdataSysid = await readControlSystemIdentifier(instance.pgdata);
    if (pgdataSysid !== id.systemIdentifier) {
      throw new PgkeepError('PGDATA_MISMATCH', `data directory ${instance.pgdata} belongs to system ${pgdataSysid}, not to the server connected to (system ${id.systemIdentifier})`, 'set the instance\'s -D to the data directory of the server it connects to');
    }
    if (!req.stream && !(await session.archivingEnabled())) {
      throw new PgkeepError('ARCHIVE_REQUIRED', 'a backup without --stream needs the WAL archive, but archive_mode is off on the server', `set archive_mode = on and archive_command = 'pgkeep archive-push -B ${ctx.root} --instance ${instance.name} --wal-file-path %p --wal-file-name %f', or add --stream`);
    }
    // A standby backs up like its primary (pg_control last, WAL from its own pg_wal under the
    // slot), but cannot switch WAL, which PAGE needs to have its start segment archived.
    if (id.inRecovery && req.mode === 'PAGE') {
      throw new PgkeepError('SERVER_UNSUPPORTED', 'a PAGE backup switches WAL on the server, and a standby cannot', 'take a PTRACK or DELTA backup of the standby, or a PAGE backup of the primary');
    }
    const owner = await readPgdataOwner(instance.pgdata);
    let parent: BackupRecord | undefined;
    let base: IncrementalBase | undefined;
    // The server's timeline history: after a failover the parent may lie on an older timeline.
    const history = req.mode === 'FULL' ? undefined : await serverTimelinePath(ctx, instance.name, instance.pgdata, id.timeline);
    if (history) {
      parent = chooseParent(ctx, instance.name, req.parentId, history);
      assertParentFits(parent, { systemIdentifier: id.systemIdentifier, path: history, currentLsn: await session.currentLsn() });
      const guessed = guessedManifest && guess?.id === parent.id && guess.generation === parent.generation;
      const manifest = await (guessed ? guessedManifest : readManifest(ctx.store, parent.instance, parent.id, parent.generation));
      base = { files: toFileMap(manifest.files), sinceLsn: parent.startLsn };
    }

    // 2. begin
    lock = await lockInstance(ctx, instance.name, 'backup', req.waitSeconds);
    // While it waited for the lock, a merge or delete may have changed or removed the parent chosen above.
    if (parent && ctx.catalog.getBackup(parent.instance, parent.id)?.generation !== parent.generation) {
      throw new PgkeepError('PARENT_INVALID', `parent backup ${parent.id} was merged or deleted while this backup waited for the lock`, 'run the backup again');
    }
    const resume = await chooseResume(ctx, instance.name, req.resume, {
      mode: req.mode, parentId: parent?.id ?? null, timeline: id.timeline, systemIdentifier: id.systemIdentifier,
      compressAlg: compression.alg, compressLevel: compression.level, blockSize: id.blockSize,
    });
    if (!req.skipSpaceCheck) {
      await checkFreeSpace(ctx, { instance: instance.name, pgdata: instance.pgdata, mode: req.mode, compressAlg: compression.alg, walSegSize: id.walSegSize });
    }
    const taken = new Set(ctx.catalog.backupIds(instance.name));
    const startTime = new Date();
    const meter = new Meter(req.progress);
    record = {
      id: newBackupId(startTime, taken),
      instance: instance.name,
      mode: req.mode,
      status: 'RUNNING',
      parentId: parent?.id ?? null,
      timeline: id.timeline,
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
      compressAlg: compression.alg,
      compressLevel: compression.level,
      stream: req.stream,
      serverVersion: id.serverVersion,
      serverVersionNum: id.serverVersionNum,
      programVersion: PROGRAM_VERSION,
      note: req.note ?? null,
      systemIdentifier: id.systemIdentifier,
      blockSize: id.blockSize,
      walSegSize: id.walSegSize,
      checksumsEnabled: id.checksumsEnabled,
      ownerPid: process.pid,
      ownerHost: hostname(),
      changeSource: null,
      error: null,
      metrics: null,
      generation: 0,
    };

    // 3. start
    await session.reserveWal(`pgkeep_${record.id.toLowerCase()}_${process.pid}`);
    record.startLsn = await session.startBackup(`pgkeep backup ${record.id}`, true);
    // Which pages changed since the parent: DELTA finds out by reading everything, PAGE and
    // PTRACK ask the archived WAL or the server, now that the new start LSN is known. PTRACK's
    // map is the server's work: asked for at once, so that the server reads it while the data
    // directory is walked and the record saved below (closing the session ends it if they fail).
    const serverMap = req.mode === 'PTRACK' && parent && history ? serverChangeMap(session, { parent, startLsn: record.startLsn, path: history }) : undefined;
    serverMap?.catch(() => undefined); // awaited below, after the record exists
    // The walk lists what exists now that the backup has started (a file made before the start
    // LSN must be listed: replay would not make it). It needs neither the record nor a change
    // map, so it runs while the record and the journal are written and while PAGE or PTRACK
    // waits for the archive or the summarizer; awaited below, after the map.
    const walking = walkPgdata(instance.pgdata);
    walking.catch(() => undefined); // a failing map is reported first; the walk's error, if any, below
    // Recorded RUNNING before anything that takes a while or may fail (reading a change map,
    // copying): a failure then leaves the backup ERROR, which needs its record to exist.
    await saveBackup(ctx, record);
    journal = await BackupJournalWriter.create(ctx.root, {
      backupId: record.id, instance: instance.name, mode: req.mode, parentId: record.parentId, startLsn: record.startLsn, timeline: record.timeline,
      systemIdentifier: id.systemIdentifier, compressAlg: compression.alg, compressLevel: compression.level, blockSize: id.blockSize, resumedFrom: resume?.backup.id ?? null,
    });
    // PAGE reads the archived WAL, waiting for it if need be: only now, since nothing would stop
    // that wait if saving the record had failed.
    const mapping = serverMap ?? (req.mode === 'PAGE' && parent && history ? walChangeMap(ctx, {
      instance: instance.name, parent, startLsn: record.startLsn, path: history, walSegSize: id.walSegSize,
      serverVersionNum: id.serverVersionNum, systemIdentifier: id.systemIdentifier, archiveTimeoutSeconds: req.archiveTimeoutSeconds ?? 300,
      session,
    }) : undefined);
    mapping?.catch(() => undefined); // awaited below
    if (base) {
      base.changeMap = await mapping;
      // Saved with the DONE record, or the ERROR one if the backup fails (abandon() saves this
      // record); not saved again now, for `show` of a RUNNING backup alone (3-5 ms of each).
      record.changeSource = base.changeMap?.source ?? 'lsn-scan';
    }
    ctx.reporter.info(`backup ${record.id} started at LSN ${formatLsn(record.startLsn)}`);
    if (resume) {
      ctx.reporter.info(describeResumeStart(resume));
      await ctx.store.cleanupTemporaries(`${backupKey(instance.name, resume.backup.id)}/data`);
    }

    // 4. copy
    const target: CopyTarget = {
      store: ctx.store,
      instance: instance.name,
      backupId: record.id,
      compressAlg: compression.alg,
      compressLevel: compression.level,
      blockSize: id.blockSize,
      checksumsEnabled: id.checksumsEnabled,
      startLsn: record.startLsn,
      verifyPages: !req.skipBlockValidation,
      uid: owner.uid,
      gid: owner.gid,
    };
    const counters: PageCheckCounters = { pagesRead: 0, pagesReread: 0, pagesTornAccepted: 0 };
    const reuse = resume ? new FileReuse(resume, target) : undefined;
    const out = journal;
    const resuming: CopyHooks = { stored: (e) => out.add(e), ...(reuse ? { reuse: (src, c) => reuse.reuse(src, c) } : {}) };
    const sources = await walking;
    const copied = sources.filter((s) => s.kind === 'data' || s.kind === 'file');
    meter.start(copied.length, copied.reduce((n, s) => n + s.size, 0));
    const entries = await copySources(sources, target, req.threads, base, counters, { progress: meter, ...resuming });
    meter.finish();

    // 5. stop
    const stop = await session.stopBackup();
    record.stopLsn = stop.stopLsn;
    record.timeline = timelineFromLabel(stop.labelFile) ?? record.timeline;
    entries.push(await storeBytes(target, 'backup_label', Buffer.from(stop.labelFile), 0o600));
    if (stop.tablespaceMap.length > 0) entries.push(await storeBytes(target, 'tablespace_map', Buffer.from(stop.tablespaceMap), 0o600));

    // 6. wal, and the recovery point beside it
    const walNames = walFileNamesBetween(record.timeline, record.startLsn, stop.stopLsn - 1n, id.walSegSize);
    if (req.stream) {
      const walSources: SourceEntry[] = walNames.map((n) => ({ path: `pg_wal/${n}`, absPath: join(instance.pgdata, 'pg_wal', n), kind: 'file', size: id.walSegSize, mode: 0o600, mtimeMs: Date.now() }));
      meter.start(walSources.length, walSources.length * id.walSegSize, 'wal');
      const walCopy = copySources(walSources, target, req.threads, undefined, counters, { progress: meter }).then((copied) => copied.map((e) => ({ ...e, kind: 'wal' as const })));
      // The session's slot still holds pg_wal from the backup's start: the recovery point is read
      // there, on the main thread, while the workers copy the WAL.
      const recovering = recordRecoveryPoint(ctx, record, { entries: walCopy, pgdata: instance.pgdata, rangeInPgWal: true });
      const walEntries = await walCopy.catch(async (e: unknown) => {
        await recovering; // it catches its own failures: the copy's is the one to report
        throw e;
      });
      meter.finish();
      if (walEntries.length !== walNames.length) {
        throw new PgkeepError('IO_ERROR', `WAL needed by the backup vanished from ${instance.pgdata}/pg_wal before it could be copied`, 'check that nothing removes WAL files by hand; take the backup again');
      }
      entries.push(...walEntries);
      await recovering;
    }
    // Ending the session (and with it the slot that held the WAL) takes the server a few
    // milliseconds; the manifest needs nothing of it.
    const closing = session.close();
    if (!req.stream) {
      ctx.reporter.info(`waiting for the backup's WAL to reach the archive (up to ${req.archiveTimeoutSeconds ?? 300} s)`);
      await awaitArchivedSegments({
        store: ctx.store,
        instance: instance.name,
        names: walNames,
        timeoutSeconds: req.archiveTimeoutSeconds ?? 300,
        purpose: `needed by backup ${record.id}`,
        gapHint: 'the archive has a gap: check archive_command, or take the backup with --stream',
      });
      await recordRecoveryPoint(ctx, record, { entries, pgdata: instance.pgdata });
    }

    // 7. seal
    entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const endTime = new Date();
    const sum = (pred: (e: FileEntry) => boolean, f: (e: FileEntry) => number) => entries.filter(pred).reduce((n, e) => n + f(e), 0);
    // Read: every page of a relation file read (counted as read), plus every other file read
    // whole (stored, or hashed against the parent's). Written and stored: the stored bytes.
    const storedBytes = sum(() => true, (e) => e.storedSize);
    meter.count({ read: counters.pagesRead * id.blockSize + sum((e) => e.kind !== 'data' && (e.storage === 'full' || e.storage === 'parent'), (e) => e.size), written: storedBytes - (reuse?.storedBytesReused ?? 0), stored: storedBytes });
    const figures = meter.figures();
    Object.assign(record, {
      status: 'DONE',
      endTime,
      dataBytes: sum((e) => e.kind !== 'wal', (e) => e.size),
      pgdataBytes: sources.reduce((n, s) => n + s.size, 0),
      walBytes: sum((e) => e.kind === 'wal', (e) => e.size),
      storedBytes: sum(() => true, (e) => e.storedSize),
      ownerPid: null,
      metrics: {
        files: entries.length,
        durationMs: endTime.getTime() - startTime.getTime(),
        pagesRead: counters.pagesRead,
        pagesReread: counters.pagesReread,
        pagesTornAccepted: counters.pagesTornAccepted,
        peakRssBytes: figures.peakRssBytes,
        ...figuresToMetrics(figures),
        ...(reuse ? { filesReused: reuse.filesReused, bytesReused: reuse.bytesReused } : {}),
      },
    } satisfies Partial<BackupRecord>);
    await writeManifest(ctx.store, record, entries);
    await closing;
    await saveBackup(ctx, record);
    ctx.reporter.info(`backup ${record.id} completed: ${entries.length} files, stop LSN ${formatLsn(stop.stopLsn)}`);
    // DONE: the manifest says which files are complete; the journal and the resumed backup have
    // served. Failing to remove them leaves clutter, not a failed backup.
    await journal.close().catch(() => undefined);
    const doneId = record.id;
    await ctx.store.remove(backupJournalKey(instance.name, doneId)).catch((e: unknown) => ctx.reporter.warn(`could not remove the journal of backup ${doneId}: ${errorText(e)}`));
    if (resume && reuse) {
      ctx.reporter.info(describeReuse(reuse.filesReused, reuse.bytesReused, resume.backup.id, resume.journal.attempt.startLsn));
      try {
        const removed = await finishResume(ctx, resume);
        if (removed.length > 0) ctx.reporter.info(`removed interrupted backup ${removed.join(', ')}, resumed by backup ${doneId}`);
      } catch (e) {
        ctx.reporter.warn(`could not remove interrupted backup ${resume.backup.id}: ${errorText(e)}; pgkeep delete --instance ${instance.name} -i ${resume.backup.id} removes it`);
      }
    }

    // 8. validate
    if (req.validate) {
      await validateBackup(ctx, record, req.threads, req.progress);
      record = ctx.catalog.requireBackup(instance.name, record.id);
    }
    return record;
  } catch (e) {
    await session.close();
    if (record && record.status === 'RUNNING') await abandon(ctx, record, e, journal);
    throw e;
  } finally {
    await lock?.release();
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function storeBytes(t: CopyTarget, relPath: string, bytes: Buffer, mode: number): Promise<FileEntry> {
  const w = await StoredFileWriter.open(t.store, backupDataKey(t.instance, t.backupId, relPath), t.compressAlg, t.compressLevel);
  await w.write(bytes);
  const r = await w.finish();
  return {
    path: relPath, kind: 'file', mode, mtimeMs: Date.now(), size: r.size, storage: 'full', storedSize: r.storedSize,
    storedChecksum: r.storedChecksum, checksum: r.checksum, compressAlg: t.compressAlg, uid: t.uid, gid: t.gid,
  };
}

/**
 * Marks a failed backup ERROR. What its journal names (stored files known complete) is kept for
 * a resume, everything else of its data removed; without a journal entry, all of its data.
 */
async function abandon(ctx: RepoContext, record: BackupRecord, cause: unknown, journal: BackupJournalWriter | undefined): Promise<void> {
  const message = isPgkeepError(cause) ? cause.message : cause instanceof Error ? cause.message : String(cause);
  try {
    // Lines queued for files already committed reach the disk (a full disk may refuse: then
    // what is there counts).
    await journal?.close().catch(() => undefined);
    // ERROR first: if removing the data is interrupted, the backup is still known as failed.
    await saveBackup(ctx, { ...record, status: 'ERROR', error: message, ownerPid: null, endTime: new Date() });
    if (!journal) {
      await ctx.store.removeTree(`${backupKey(record.instance, record.id)}/data`);
      return;
    }
    const kept = await keepJournalledFiles(ctx, record);
    if (kept > 0) {
      ctx.reporter.warn(`backup ${record.id} failed; the ${kept} files it stored are kept: the next ${record.mode} backup resumes it (or run backup --resume), or free the space with pgkeep delete --instance ${record.instance} -i ${record.id}`);
    }
  } catch (e) {
    ctx.reporter.warn(`could not mark backup ${record.id} ERROR: ${e instanceof Error ? e.message : String(e)}`);
  }
}
