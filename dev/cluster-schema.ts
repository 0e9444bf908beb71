/**
 * The Temporal databases on the cluster's PostgreSQL, made with `temporal-sql-tool` the way Temporal's
 * self-hosting guide and the admin-tools image make them: create the database, set up the versioning
 * tables (version 0.0), then apply every versioned migration. The schema files are the ones embedded in
 * the tool (`--schema-name postgresql/v12/...`), so the tool and the server are always of one version.
 * Every step is safe to repeat, so each start runs them all: on an existing database only the migrations
 * a newer server brings are applied (update-schema is incremental).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Postgres } from './postgres';

const execFileAsync = promisify(execFile);

export const TEMPORAL_DATABASES = [
  { database: 'temporal', schema: 'postgresql/v12/temporal' },
  { database: 'temporal_visibility', schema: 'postgresql/v12/visibility' },
] as const;

interface SqlToolRun {
  code: number;
  output: string;
}

async function sqlTool(tool: string, pg: Postgres, database: string, args: string[]): Promise<SqlToolRun> {
  const common = [
    '--plugin',
    'postgres12',
    '--endpoint',
    pg.host,
    '--port',
    String(pg.port),
    '--user',
    pg.user,
    '--database',
    database,
  ];
  try {
    // The password goes through the tool's environment variable, not argv (visible in `ps`).
    const { stdout, stderr } = await execFileAsync(tool, [...common, ...args], {
      env: { ...process.env, SQL_PASSWORD: pg.password },
    });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
    return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? e.message}` };
  }
}

/** Creates (first run) and migrates (every run) both databases. Returns what it did, per database. */
export async function ensureTemporalSchema(tool: string, pg: Postgres): Promise<Record<string, string>> {
  const done: Record<string, string> = {};
  for (const { database, schema } of TEMPORAL_DATABASES) {
    const created = await sqlTool(tool, pg, database, ['create-database']);
    if (created.code !== 0 && !/already exists/i.test(created.output))
      throw new Error(`temporal-sql-tool create-database ${database} failed:\n${created.output}`);
    let action = created.code === 0 ? 'created' : 'existed';
    // Idempotent: the versioning tables are created only if missing, and a version above 0.0 is kept.
    const setup = await sqlTool(tool, pg, database, ['setup-schema', '--version', '0.0']);
    if (setup.code !== 0) throw new Error(`temporal-sql-tool setup-schema ${database} failed:\n${setup.output}`);
    const update = await sqlTool(tool, pg, database, ['update-schema', '--schema-name', schema]);
    if (update.code !== 0) throw new Error(`temporal-sql-tool update-schema ${database} failed:\n${update.output}`);
    action += ', schema up to date';
    done[database] = action;
  }
  return done;
}
