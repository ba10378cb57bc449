import { Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { addInstance } from '../app/instances.js';
import { BaseCommand, connectionFlags, repoFlag } from '../cli/base-command.js';

export default class AddInstance extends BaseCommand {
  static override summary = 'Register a PostgreSQL cluster to back up';
  static override description = 'Connects to the server, checks that -D is its data directory, and records its system identifier, version, block size and WAL segment size. Connection settings are kept; passwords are not (use ~/.pgpass or PGPASSWORD).';
  static override examples = ['<%= config.bin %> add-instance -B /backups --instance main -D /var/lib/postgresql/15/main'];
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'name for the instance', helpValue: 'NAME' }),
    pgdata: Flags.string({ char: 'D', required: true, description: 'the cluster\'s data directory', helpValue: 'DIR' }),
    ...connectionFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(AddInstance);
    const ctx = await this.openRepo(flags['backup-path']);
    const row = await addInstance(ctx, {
      name: flags.instance,
      pgdata: resolve(flags.pgdata),
      connection: { host: flags.host, port: flags.port, user: flags.user, dbname: flags.dbname },
    });
    this.log(`instance ${row.name} added: PostgreSQL ${Math.floor(row.serverVersionNum / 10000)}, system ${row.systemIdentifier}, data directory ${row.pgdata}`);
  }
}
