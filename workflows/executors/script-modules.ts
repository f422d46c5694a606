/**
 * Script modules (table `script_modules`, migration 007): the programs `script` tasks run. Saving a module adds
 * its next version; versions are never changed or deleted, so a workflow pinned to `{module, version}` always runs
 * the same body. SQL for the aggregate lives here and nowhere else.
 */
import type { Queryable } from '../../adapter';

export const SCRIPT_RUNTIMES = ['pwsh', 'bash', 'node', 'python3'] as const;
export type ScriptRuntime = (typeof SCRIPT_RUNTIMES)[number];
export const SCRIPT_PLATFORMS = ['linux', 'windows', 'any'] as const;
export type ScriptPlatform = (typeof SCRIPT_PLATFORMS)[number];

export const SCRIPT_MODULE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
// Concurrent saves of one module each lose at most once per other saver; far more would mean something is wrong.
const MAX_SAVE_ATTEMPTS = 50;
/** A script body larger than this is refused. Bytes (UTF-8). */
export const MAX_SCRIPT_BODY_BYTES = 256 * 1024;

export interface ScriptModule {
  name: string;
  version: number;
  category: string;
  platform: ScriptPlatform;
  runtime: ScriptRuntime;
  description: string;
  body: string;
  createdAt: string;
  createdBy: string;
}

/** One module in a listing: its latest version's metadata (no body) and how many versions it has. */
export interface ScriptModuleSummary extends Omit<ScriptModule, 'body'> {
  versions: number;
}

export interface NewScriptModuleVersion {
  name: string;
  runtime: ScriptRuntime;
  body: string;
  category?: string;
  platform?: ScriptPlatform;
  description?: string;
  /** Attribution, as `triggered_by` (`admin:<key>`, `system:<task>` ...). */
  createdBy: string;
}

/** Input a module cannot be saved with; `field` is the offending property of {@link NewScriptModuleVersion}. */
export class ScriptModuleInputError extends Error {
  override readonly name = 'ScriptModuleInputError';
  readonly code = 'SCRIPT_MODULE_INPUT_INVALID' as const;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

interface Row {
  name: string;
  version: number;
  category: string;
  platform: ScriptPlatform;
  runtime: ScriptRuntime;
  description: string;
  body?: string;
  created_at: Date | string;
  created_by: string;
  versions?: number | string;
}

const COLUMNS = 'name, version, category, platform, runtime, description, created_at, created_by';

function iso(v: Date | string): string {
  return v instanceof Date ? v.toISOString() : new Date(v).toISOString();
}

function toModule(r: Row): ScriptModule {
  return {
    name: r.name,
    version: Number(r.version),
    category: r.category,
    platform: r.platform,
    runtime: r.runtime,
    description: r.description,
    body: r.body ?? '',
    createdAt: iso(r.created_at),
    createdBy: r.created_by,
  };
}

function check(input: NewScriptModuleVersion): void {
  if (!SCRIPT_MODULE_NAME_PATTERN.test(input.name)) {
    throw new ScriptModuleInputError('name', 'must be 1-128 characters of letters, digits, ".", "_" and "-", starting with a letter or digit');
  }
  if (!(SCRIPT_RUNTIMES as readonly string[]).includes(input.runtime)) throw new ScriptModuleInputError('runtime', `must be one of ${SCRIPT_RUNTIMES.join(', ')}`);
  if (input.platform !== undefined && !(SCRIPT_PLATFORMS as readonly string[]).includes(input.platform)) {
    throw new ScriptModuleInputError('platform', `must be one of ${SCRIPT_PLATFORMS.join(', ')}`);
  }
  if (input.category !== undefined && (input.category.length < 1 || input.category.length > 64)) throw new ScriptModuleInputError('category', 'must be 1-64 characters');
  if (input.body.trim() === '') throw new ScriptModuleInputError('body', 'must not be empty');
  if (Buffer.byteLength(input.body, 'utf8') > MAX_SCRIPT_BODY_BYTES) throw new ScriptModuleInputError('body', `must be at most ${MAX_SCRIPT_BODY_BYTES} bytes`);
  if (input.body.includes('\u0000')) throw new ScriptModuleInputError('body', 'must not contain NUL characters');
}

/**
 * Saves `input` as the module's next version (1 for a new module) and returns it.
 * Two saves of one module racing each other both succeed, with consecutive versions: the loser of the primary-key
 * race inserts nothing (ON CONFLICT DO NOTHING, so an enclosing transaction stays usable) and tries the next
 * number; each statement sees the rows committed before it (READ COMMITTED).
 * @throws ScriptModuleInputError for an invalid name, runtime, platform, category or body.
 */
export async function createScriptModuleVersion(q: Queryable, input: NewScriptModuleVersion): Promise<ScriptModule> {
  check(input);
  const params = [input.name, input.category ?? 'general', input.platform ?? 'any', input.runtime, input.description ?? '', input.body, input.createdBy];
  const sql = `INSERT INTO script_modules (name, version, category, platform, runtime, description, body, created_by)
     SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6, $7 FROM script_modules WHERE name = $1
     ON CONFLICT (name, version) DO NOTHING
     RETURNING ${COLUMNS}, body`;
  for (let attempt = 1; ; attempt++) {
    const { rows } = await q.query<Row>(sql, params);
    if (rows[0]) return toModule(rows[0]);
    if (attempt >= MAX_SAVE_ATTEMPTS) throw new Error(`script module ${input.name}: no free version number after ${MAX_SAVE_ATTEMPTS} attempts`);
  }
}

/** A version of a module, or its latest when `version` is undefined; undefined when there is none. */
export async function getScriptModule(q: Queryable, name: string, version?: number): Promise<ScriptModule | undefined> {
  const { rows } =
    version === undefined
      ? await q.query<Row>(`SELECT ${COLUMNS}, body FROM script_modules WHERE name = $1 ORDER BY version DESC LIMIT 1`, [name])
      : await q.query<Row>(`SELECT ${COLUMNS}, body FROM script_modules WHERE name = $1 AND version = $2`, [name, version]);
  return rows[0] ? toModule(rows[0]) : undefined;
}

/** Whether `name` has version `version` (what the workflow compiler's `lookupScriptModule` asks). */
export async function scriptModuleExists(q: Queryable, name: string, version: number): Promise<boolean> {
  const { rowCount } = await q.query('SELECT 1 FROM script_modules WHERE name = $1 AND version = $2', [name, version]);
  return rowCount > 0;
}

/** Every module's latest version (without body), by name; optionally only one category. */
export async function listScriptModules(q: Queryable, opts: { category?: string } = {}): Promise<ScriptModuleSummary[]> {
  const { rows } = await q.query<Row>(
    `SELECT ${COLUMNS}, versions FROM (
       SELECT ${COLUMNS}, count(*) OVER (PARTITION BY name) AS versions,
              row_number() OVER (PARTITION BY name ORDER BY version DESC) AS rn
         FROM script_modules) m
      WHERE rn = 1 AND ($1::text IS NULL OR category = $1)
      ORDER BY name`,
    [opts.category ?? null],
  );
  return rows.map((r) => {
    const { body: _body, ...rest } = toModule(r);
    return { ...rest, versions: Number(r.versions) };
  });
}

/** Every version of one module, newest first, without bodies; [] when the module does not exist. */
export async function listScriptModuleVersions(q: Queryable, name: string): Promise<Omit<ScriptModule, 'body'>[]> {
  const { rows } = await q.query<Row>(`SELECT ${COLUMNS} FROM script_modules WHERE name = $1 ORDER BY version DESC`, [name]);
  return rows.map((r) => {
    const { body: _body, ...rest } = toModule(r);
    return rest;
  });
}
