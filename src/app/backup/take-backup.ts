/**
 * The backup use case (FULL, DELTA, PAGE, PTRACK). Reads as its phases, each in its own file
 * where it is more than a call or two:
 *
 *   1. prepare   check the instance, the data directory and the server are the same cluster;
 *                for an incremental backup, choose the parent and load its manifest (prepare-backup.ts)
 *   2. begin     lock the instance; choose an interrupted backup to resume; check free space
 *   3. start     reserve WAL with a temporary slot, start the non-exclusive backup, record it
 *                RUNNING (repository, then catalog) with its journal; PAGE and PTRACK get their
 *                change map (change-maps/) while the data directory is walked
 *   4. copy      copy files in parallel (pages verified), pg_control last (copy-sources.ts)
 *   5. stop      stop the backup; store backup_label and tablespace_map (stop-backup.ts)
 *   6. wal       stream mode: copy the WAL from start to stop LSN out of pg_wal; otherwise wait
 *                until the archive holds it (--archive-timeout); the recovery point (backup-wal.ts)
 *   7. seal      write the manifest durably, then mark the backup DONE (seal-backup.ts)
 *   8. validate  re-read what was stored; OK (unless --no-validate)
 *
 * A failure anywhere marks the backup ERROR and rethrows (abandon-backup.ts): the repository
 * never holds a DONE backup whose bytes are not all durable. While copying, each stored file is
 * journalled (resume.jsonl); a failed backup keeps the files its journal names, so that the next
 * backup of the same kind can resume it (resume-plan.ts, docs/resume.md), and removes the rest.
 */
import type { BackupMode, BackupRecord, CompressAlg, FileEntry } from '../../core/backup-types.js';
import { formatLsn } from '../../core/lsn.js';
import { BackupSession } from '../../postgres/backup-session.js';
import type { ConnectionSettings } from '../../postgres/connection.js';
import { assertDataDirectory, walkPgdata } from '../../postgres/pgdata-walker.js';
import { BackupJournalWriter } from '../../repository/backup-journal.js';
import { backupKey } from '../../repository/layout.js';
import { lockInstance } from '../instance-locking.js';
import { instanceCompression, instanceConnection } from '../instance-settings.js';
import { Meter, type OperationProgress } from '../progress.js';
import { saveBackup, type RepoContext } from '../repo-context.js';
import { validateBackup } from '../validate/validate-backup.js';
import { abandonBackup } from './abandon-backup.js';
import { awaitBackupWal, copyBackupWal } from './backup-wal.js';
import { serverChangeMap } from './change-maps/server-change-map.js';
import { walChangeMap } from './change-maps/wal-change-map.js';
import { checkFreeSpace } from './check-free-space.js';
import type { CopyTarget } from './copy-entry.js';
import { copySources, type CopyHooks } from './copy-sources.js';
import { newBackupRecord } from './new-backup-record.js';
import { assertParentUnchanged, guessParent, prepareBackup } from './prepare-backup.js';
import { assertTornPagesBeforeStop, type PageCheckCounters } from './read-data-file.js';
import { chooseResume, describeResumeStart, FileReuse } from './resume-plan.js';
import { sealBackup } from './seal-backup.js';
import { stopBackup } from './stop-backup.js';
import { storedDataKeys } from '../stored-data-keys.js';
import { debugPhase } from '../../debug.js';

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
  /** Without --stream: how long to wait for the backup's WAL to reach the archive (and PAGE for its map); default 300 s. */
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

/** Seconds to wait for archived WAL (PAGE's map, and the WAL of a backup without --stream). */
const DEFAULT_ARCHIVE_TIMEOUT_SECONDS = 300;

function archiveTimeoutSeconds(req: BackupRequest): number {
  return req.archiveTimeoutSeconds ?? DEFAULT_ARCHIVE_TIMEOUT_SECONDS;
}

export async function takeBackup(ctx: RepoContext, req: BackupRequest): Promise<BackupRecord> {
  // 1. prepare
  const instance = ctx.catalog.requireInstance(req.instance);
  await assertDataDirectory(instance.pgdata);
  const compression = instanceCompression(instance, req.compressAlg, req.compressLevel);
  // The likely parent's manifest is read while the server is reached.
  const guess = guessParent(ctx, instance.name, req.mode, req.parentId);
  const session = await BackupSession.open(instanceConnection(instance, req.connection));
  let lock: { release(): Promise<void> } | undefined;
  let record: BackupRecord | undefined;
  let journal: BackupJournalWriter | undefined;
  try {
    const id = session.identity;
    const { owner, parent, base, history } = await prepareBackup(ctx, req, instance, session, guess);
    debugPhase('connected and prepared (parent chosen, its manifest read)');

    // 2. begin
    lock = await lockInstance(ctx, instance.name, 'backup', req.waitSeconds);
    assertParentUnchanged(ctx, parent);
    const resume = await chooseResume(ctx, instance.name, req.resume, {
      mode: req.mode, parentId: parent?.id ?? null, timeline: id.timeline, systemIdentifier: id.systemIdentifier,
      compressAlg: compression.alg, compressLevel: compression.level, blockSize: id.blockSize,
    });
    if (!req.skipSpaceCheck) {
      await checkFreeSpace(ctx, { instance: instance.name, pgdata: instance.pgdata, mode: req.mode, compressAlg: compression.alg, walSegSize: id.walSegSize });
    }
    record = newBackupRecord(ctx, { instance: instance.name, mode: req.mode, stream: req.stream, note: req.note, parentId: parent?.id ?? null, server: id, compression });
    if (req.skipBlockValidation) record.blockValidationSkipped = true;
    const meter = new Meter(req.progress);

    // 3. start
    await session.reserveWal(`pgkeep_${record.id.toLowerCase()}_${process.pid}`);
    record.startLsn = await session.startBackup(`pgkeep backup ${record.id}`, true);
    debugPhase('backup started on the server (start checkpoint done)');
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
    // The copy commits stored files without waiting for the disk; they are made durable many at
    // a time, before the journal lines naming them and before the manifest (sealBackup):
    // docs/repository-format.md, "Durability of a backup's stored files".
    const dataStore = ctx.store.deferringSync();
    const backupId = record.id;
    const syncStored = (done: readonly FileEntry[]) => dataStore.syncObjects(storedDataKeys(instance.name, backupId, done));
    journal = await BackupJournalWriter.create(ctx.root, {
      backupId: record.id, instance: instance.name, mode: req.mode, parentId: record.parentId, startLsn: record.startLsn, timeline: record.timeline,
      systemIdentifier: id.systemIdentifier, compressAlg: compression.alg, compressLevel: compression.level, blockSize: id.blockSize, resumedFrom: resume?.backup.id ?? null,
    }, syncStored);
    // PAGE reads the archived WAL, waiting for it if need be: only now, since nothing would stop
    // that wait if saving the record had failed.
    const mapping = serverMap ?? (req.mode === 'PAGE' && parent && history ? walChangeMap(ctx, {
      instance: instance.name, parent, startLsn: record.startLsn, path: history, walSegSize: id.walSegSize,
      serverVersionNum: id.serverVersionNum, systemIdentifier: id.systemIdentifier, archiveTimeoutSeconds: archiveTimeoutSeconds(req),
      session,
    }) : undefined);
    mapping?.catch(() => undefined); // awaited below
    if (base) {
      base.changeMap = await mapping;
      if (mapping) debugPhase('change map read');
      // Saved with the DONE record, or the ERROR one if the backup fails (abandonBackup saves
      // this record); not saved again now, for `show` of a RUNNING backup alone (3-5 ms of each).
      record.changeSource = base.changeMap?.source ?? 'lsn-scan';
    }
    ctx.reporter.info(`backup ${record.id} started at LSN ${formatLsn(record.startLsn)}`);
    if (resume) {
      ctx.reporter.info(describeResumeStart(resume));
      await ctx.store.cleanupTemporaries(`${backupKey(instance.name, resume.backup.id)}/data`);
    }

    // 4. copy
    const target: CopyTarget = {
      store: dataStore,
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
    // Each stored file is fsynced in the background as soon as it is committed, a few at a time,
    // so that the disk writes back the first files while the copy writes the rest, instead of
    // all of them while the backup stops (docs/performance.md, "Stored files synced ahead").
    const ahead = dataStore.syncAhead();
    const hooks: CopyHooks = { stored: (e) => out.add(e), committed: (keys) => ahead.add(keys), ...(reuse ? { reuse: (src, c) => reuse.reuse(src, c) } : {}) };
    const sources = await walking;
    debugPhase('data directory walked');
    const copied = sources.filter((s) => s.kind === 'data' || s.kind === 'file');
    meter.start(copied.length, copied.reduce((n, s) => n + s.size, 0));
    const entries = await copySources(sources, target, req.threads, base, counters, { progress: meter, ...hooks });
    meter.finish();
    debugPhase('files copied');
    // The copy's stored files are made durable while the backup stops and its WAL is copied;
    // sealBackup waits for them, and syncs the files stored after, before the manifest.
    const syncing = { entries: new Set(entries), done: Promise.all([ahead.drain(), syncStored(entries)]).then(() => undefined) };
    syncing.done.catch(() => undefined); // awaited by sealBackup, or dropped with a failed backup

    // 5. stop
    entries.push(...(await stopBackup(session, target, record)));
    assertTornPagesBeforeStop(counters, record.stopLsn as bigint);
    debugPhase('backup stopped on the server');

    // 6. wal, and the recovery point beside it
    if (req.stream) {
      entries.push(...(await copyBackupWal(ctx, record, { pgdata: instance.pgdata, threads: req.threads, target, counters, progress: meter })));
      debugPhase('WAL copied');
    }
    // Ending the session (and with it the slot that held the WAL) takes the server a few
    // milliseconds; neither the archive nor the manifest needs anything of it.
    const closing = session.close();
    if (!req.stream) {
      await awaitBackupWal(ctx, record, { pgdata: instance.pgdata, entries, timeoutSeconds: archiveTimeoutSeconds(req), fromStandby: id.inRecovery });
      debugPhase('WAL archived');
    }

    // 7. seal
    await sealBackup(ctx, record, { entries, sources, counters, meter, journal, closing, syncing, resume: resume && reuse ? { source: resume, reuse } : undefined });
    debugPhase('backup sealed (manifest written, catalog saved)');

    // 8. validate
    if (req.validate) {
      // With --skip-block-validation, pages the copy did not judge are not judged here either
      // (the record says so): a page taken as it is would otherwise make the backup CORRUPT.
      await validateBackup(ctx, record, req.threads, { progress: req.progress });
      record = ctx.catalog.requireBackup(instance.name, record.id);
      debugPhase('backup validated');
    }
    return record;
  } catch (e) {
    await session.close();
    if (record && record.status === 'RUNNING') await abandonBackup(ctx, record, e, journal);
    throw e;
  } finally {
    await lock?.release();
  }
}
