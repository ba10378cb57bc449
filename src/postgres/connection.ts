/**
 * Connection settings and opening a client, the way psql would: explicit flags first, then the
 * libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD), then ~/.pgpass (the pg
 * package reads it), then defaults (the local unix socket). Passwords never pass through pgkeep's
 * own settings, so they can never land in the catalog or a log.
 */
import { existsSync } from 'node:fs';
// Before pg: see node-navigator.ts.
import './node-navigator.js';
import pg from 'pg';
import { errnoCode, errorMessage, PgkeepError } from '../errors.js';

export interface ConnectionSettings {
  host?: string | undefined;
  port?: number | undefined;
  user?: string | undefined;
  dbname?: string | undefined;
}

const DEFAULT_SOCKET_DIRS = ['/var/run/postgresql', '/tmp'];

/** The settings pg will use, resolved now so that error messages can name them. */
export function resolveConnection(s: ConnectionSettings, env: NodeJS.ProcessEnv = process.env): Required<ConnectionSettings> {
  const host = s.host ?? env.PGHOST ?? DEFAULT_SOCKET_DIRS.find((d) => existsSync(d)) ?? 'localhost';
  const port = s.port ?? (env.PGPORT ? Number(env.PGPORT) : 5432);
  const user = s.user ?? env.PGUSER ?? 'postgres';
  const dbname = s.dbname ?? env.PGDATABASE ?? 'postgres';
  return { host, port, user, dbname };
}

export function describeConnection(c: Required<ConnectionSettings>): string {
  const where = c.host.startsWith('/') ? `socket ${c.host}/.s.PGSQL.${c.port}` : `${c.host}:${c.port}`;
  return `${where} as ${c.user}, database ${c.dbname}`;
}

export async function openClient(settings: ConnectionSettings, applicationName = 'pgkeep'): Promise<pg.Client> {
  const c = resolveConnection(settings);
  const client = new pg.Client({
    host: c.host,
    port: c.port,
    user: c.user,
    database: c.dbname,
    application_name: applicationName,
    connectionTimeoutMillis: 15_000,
  });
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw connectionError(e, c);
  }
  // A backup session must not be cut by the server's idle timeouts while files are copied.
  await client.query("SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; SET lock_timeout = 0");
  return client;
}

function connectionError(e: unknown, c: Required<ConnectionSettings>): PgkeepError {
  const where = describeConnection(c);
  const sqlState = typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : '';
  const msg = errorMessage(e);
  if (sqlState === '28P01' || sqlState === '28000' || /password/i.test(msg)) {
    return new PgkeepError('SERVER_AUTH', `authentication failed for ${where}: ${msg}`, 'check the user (-U), and the password in ~/.pgpass or PGPASSWORD', { cause: e });
  }
  if (sqlState === '3D000') {
    return new PgkeepError('SERVER_ERROR', `database "${c.dbname}" does not exist on ${where}`, 'name an existing database with -d', { cause: e });
  }
  if (sqlState === '57P03') {
    return new PgkeepError('SERVER_UNREACHABLE', `the server at ${where} is starting up or shutting down`, 'wait until it accepts connections, then retry', { cause: e });
  }
  const errno = errnoCode(e);
  if (errno === 'ECONNREFUSED' || errno === 'ENOENT' || errno === 'EHOSTUNREACH' || errno === 'ETIMEDOUT' || /timeout/i.test(msg)) {
    return new PgkeepError('SERVER_UNREACHABLE', `cannot connect to PostgreSQL at ${where}: ${msg}`, 'start the server, or set -h/-p (or PGHOST/PGPORT) to where it listens', { cause: e });
  }
  return new PgkeepError('SERVER_ERROR', `cannot connect to PostgreSQL at ${where}: ${msg}`, undefined, { cause: e });
}

/** Wrap an error from a query in the backup session into a PgkeepError. */
export function serverError(e: unknown, doing: string): PgkeepError {
  if (e instanceof PgkeepError) return e;
  const msg = errorMessage(e);
  const sqlState = typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : '';
  if (sqlState === '57P01' || sqlState === '57P02' || sqlState === '57P03' || /terminat|Connection terminated|ECONNRESET/i.test(msg)) {
    return new PgkeepError('SERVER_UNREACHABLE', `the server connection was lost while ${doing}: ${msg}`, 'the server closed the connection: check its log; take the backup again', { cause: e });
  }
  if (sqlState === '42501') {
    return new PgkeepError('SERVER_AUTH', `permission denied while ${doing}: ${msg}`, 'connect as a superuser or a role with REPLICATION and pg_read_all_settings', { cause: e });
  }
  return new PgkeepError('SERVER_ERROR', `PostgreSQL error while ${doing}: ${msg}`, undefined, { cause: e });
}
