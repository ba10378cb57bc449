/**
 * What one WAL record means for a PAGE backup (see wal-block-collector.ts for where it goes).
 *
 * - Block references: those pages changed. Built-in resource managers describe every page they
 *   change this way; the exceptions are the records below.
 * - Relation created, truncated (VACUUM shrinking a table), or dropped at commit/abort: its
 *   files are read whole. A new relation file the parent does not know is copied whole by the
 *   copy in any case, but a relation number can be reused, and a truncated file may grow again.
 * - Database created (its directory is copied file by file, outside WAL, with the FILE_COPY
 *   strategy) or dropped: its directory is read whole.
 * - Any other record flagged XLR_SPECIAL_REL_UPDATE, and every record of a custom resource
 *   manager (an extension's replay may do anything): the relations it names are read whole; if
 *   it names none, no file can be vouched for and the whole cluster is read, as DELTA does.
 */
import { formatLsn } from '../../../core/lsn.js';
import { relationChangesWithoutBlocks } from '../../../postgres/wal/record-kinds.js';
import type { WalRecord } from '../../../postgres/wal/wal-record.js';
import type { WalTraits } from '../../../postgres/server-versions.js';
import type { WalBlockCollector } from './wal-block-collector.js';

/** Resource manager ids from here on belong to extensions (RM_MIN_CUSTOM_ID). */
const RM_MIN_CUSTOM_ID = 128;

export function collectRecord(rec: WalRecord, traits: WalTraits, c: WalBlockCollector): void {
  for (const b of rec.blocks) c.addBlock(b.spcOid, b.dbOid, b.relNumber, b.fork, b.block);
  if (rec.rmid >= RM_MIN_CUSTOM_ID) wholeNamedRelations(rec, c, `custom resource manager ${rec.rmid}`);
  const changes = relationChangesWithoutBlocks(rec, traits);
  if (changes === undefined) return;
  for (const ch of changes) {
    switch (ch.kind) {
      case 'create':
      case 'truncate':
      case 'drop':
        c.wholeRelation(ch.rel.spcOid, ch.rel.dbOid, ch.rel.relNumber);
        break;
      case 'database-create':
        c.wholeDatabase(ch.spcOid, ch.dbOid);
        break;
      case 'database-drop':
        for (const spc of ch.spcOids) c.wholeDatabase(spc, ch.dbOid);
        break;
      case 'special':
        wholeNamedRelations(rec, c, `resource manager ${ch.rmid}, info 0x${ch.info.toString(16)}, flagged XLR_SPECIAL_REL_UPDATE`);
        break;
    }
  }
}

function wholeNamedRelations(rec: WalRecord, c: WalBlockCollector, what: string): void {
  if (rec.blocks.length === 0) {
    c.wholeCluster(`the record at ${formatLsn(rec.lsn)} (${what}) may change relation files it does not name`);
    return;
  }
  for (const b of rec.blocks) c.wholeRelation(b.spcOid, b.dbOid, b.relNumber);
}
