import { Flags } from '@oclif/core';
import Table from 'cli-table3';
import { backupToJson, showBackups, type BackupJson } from '../app/show/backup-view.js';
import { orderAsTree, treeLabel } from '../app/show/backup-tree.js';
import { shortList } from '../cli/short-list.js';
import { showArchive, type InstanceArchiveJson } from '../app/show/archive-view.js';
import { resolveChain } from '../core/chain.js';
import { isPgkeepError } from '../errors.js';
import { BaseCommand, repoFlag } from '../cli/base-command.js';
import { figuresFromMetrics, figuresLine } from '../cli/progress-display.js';

export default class Show extends BaseCommand {
  static override summary = 'List backups, or every detail of one';
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ description: 'only this instance', helpValue: 'NAME' }),
    'backup-id': Flags.string({ char: 'i', description: 'every detail of one backup', helpValue: 'ID' }),
    format: Flags.string({ options: ['plain', 'json'], default: 'plain', description: 'output format' }),
    archive: Flags.boolean({ description: 'the WAL archive instead: per timeline, the archived range, gaps, and the backups each range serves', exclusive: ['backup-id'] }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Show);
    const ctx = await this.openRepo(flags['backup-path']);
    if (flags.archive) {
      const names = flags.instance ? [ctx.catalog.requireInstance(flags.instance).name] : ctx.catalog.listInstances().map((i) => i.name);
      const view = await showArchive(ctx, names);
      if (flags.format === 'json') this.printJson(view);
      else this.printArchive(view);
      return;
    }
    if (flags['backup-id']) {
      const b = flags.instance ? ctx.catalog.requireBackup(flags.instance, flags['backup-id']) : (ctx.catalog.findBackupById(flags['backup-id']) ?? ctx.catalog.requireBackup('', flags['backup-id']));
      let chain: string[] | string;
      try {
        chain = resolveChain(b, (id) => ctx.catalog.getBackup(b.instance, id)).map((c) => c.id);
      } catch (e) {
        chain = `not restorable: ${isPgkeepError(e) ? e.message : String(e)}`;
      }
      const json = { ...backupToJson(b), restore_chain: chain };
      if (flags.format === 'json') this.printJson([{ instance: b.instance, backups: [json] }]);
      else this.printDetails(b.instance, json);
      return;
    }
    const names = flags.instance ? [ctx.catalog.requireInstance(flags.instance).name] : ctx.catalog.listInstances().map((i) => i.name);
    const view = showBackups(ctx.catalog.listBackups(flags.instance), names);
    if (flags.format === 'json') {
      this.printJson(view);
      return;
    }
    if (view.length === 0) this.log('no instances; add one with `pgkeep add-instance`');
    for (const inst of view) {
      this.log(`\nBACKUP INSTANCE '${inst.instance}'`);
      const table = new Table({
        head: ['ID', 'Mode', 'Status', 'Parent', 'Start time', 'Duration', 'Data', 'Stored', 'Start LSN', 'Stop LSN', 'TLI'],
        style: { head: [], border: [] },
      });
      const byId = new Map(inst.backups.map((b) => [b.id, b]));
      const records = ctx.catalog.listBackups(inst.instance);
      for (const row of orderAsTree(records)) {
        const b = byId.get(row.backup.id)!;
        table.push([treeLabel(b.id, row.depth), b.backup_mode, b.status, b.parent_backup_id ?? '', b.start_time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), duration(b), size(b.data_bytes), size(b.stored_bytes), b.start_lsn, b.stop_lsn ?? '', String(b.timeline)]);
      }
      this.log(inst.backups.length ? table.toString() : '  (no backups)');
    }
  }

  private printArchive(view: InstanceArchiveJson[]): void {
    if (view.length === 0) this.log('no instances; add one with `pgkeep add-instance`');
    for (const inst of view) {
      this.log(`\nARCHIVE OF INSTANCE '${inst.instance}'`);
      const table = new Table({
        head: ['TLI', 'Parent', 'Switchpoint', 'First segment', 'Last segment', 'Segments', 'Gaps', 'Backups served'],
        style: { head: [], border: [] },
      });
      for (const t of inst.timelines) {
        const gaps = shortList(t.gaps.map((g) => (g.segments === 1 ? g.first_segment : `${g.first_segment}..${g.last_segment}`)), '\n', 'gaps');
        const served = t.ranges.filter((r) => r.backups.length > 0).map((r) => (t.ranges.length > 1 ? `${r.first_segment}..: ${shortList(r.backups, ' ', 'backups')}` : shortList(r.backups, ' ', 'backups'))).join('\n');
        table.push([String(t.timeline), t.parent_timeline === null ? '' : String(t.parent_timeline), t.switchpoint ?? '', t.first_segment ?? '', t.last_segment ?? '', String(t.segments), gaps, served]);
      }
      this.log(inst.timelines.length ? table.toString() : '  (archive empty)');
    }
  }

  private printDetails(instance: string, b: BackupJson & { restore_chain: string[] | string }): void {
    this.log(`instance = ${instance}`);
    for (const [k, v] of Object.entries(b)) {
      if (k === 'restore_chain') {
        this.log(`restore_chain = ${Array.isArray(v) ? v.join(' <- ') : String(v)}`);
      } else if (k === 'metrics' && v) {
        for (const [mk, mv] of Object.entries(v as Record<string, number>)) this.log(`metrics.${mk} = ${mv}`);
        const figures = figuresFromMetrics(v as Record<string, number>);
        if (figures) this.log(`figures = ${figuresLine(figures)}`);
      } else {
        this.log(`${k} = ${v === null ? '' : String(v)}`);
      }
    }
  }
}

function duration(b: BackupJson): string {
  if (!b.end_time) return '';
  const s = Math.round((Date.parse(b.end_time) - Date.parse(b.start_time)) / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${s % 60}s` : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

function size(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 && u > 0 ? v.toFixed(1) : Math.round(v)}${units[u]}`;
}
