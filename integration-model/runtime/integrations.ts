import {
  PgErrorCode,
  REDACTED,
  SECRET_CONFIG_PATHS,
  checkMtlsMaterial,
  conflict,
  getByPointer,
  invalidField,
  looksLikeSecretReference,
  notFound,
  openSecret,
  parseSecretReference,
  parsePointer,
  sealSecret,
  secretPlace,
  sqlState,
  toPointer,
  validateIntegrationConfig,
  validationFailed,
  writeAudit,
  type Actor,
  type FieldError,
  type LogLevel,
  type Queryable,
} from '../../adapter';
import { integrationRoleKinds, integrationRoleName } from '../tasks';
import { operationInputSchema } from '../task-schemas';
import { HTTP_METHODS, type IntegrationModel } from '../types';
import { STUB_CONFIG_KEY, checkStubConfig, unknownStubOperations } from './stub';

/**
 * Secret values of a configuration by RFC 6901 pointer (see SECRET_CONFIG_PATHS). As stored (and in an
 * IntegrationRecord) each value is sealed (adapter/secrets); `openIntegrationSecrets` opens them where they are used.
 */
export type SecretValues = Record<string, unknown>;

export interface HealthSettings {
  operation_id: string;
  interval_s?: number;
  slow_ms?: number;
}

export type HealthState = 'unknown' | 'online' | 'degraded' | 'offline';

export interface HealthStatusView {
  status: HealthState;
  checked_at: string | null;
  detail: string | null;
  http_status: number | null;
  latency_ms: number | null;
}

/** An integration as the API answers it: secrets replaced by the redaction marker. */
export interface IntegrationView {
  id: number;
  name: string;
  model_id: string;
  config: Record<string, unknown>;
  log_level: LogLevel;
  stub_mode: boolean;
  health: HealthSettings | null;
  health_status: HealthStatusView;
  roles: string[];
  created_by: string;
  created_at: string;
  updated_at: string;
}

/** An integration row with what the runtime needs; `secrets` are sealed, and must never leave the server. */
export interface IntegrationRecord {
  id: number;
  name: string;
  model_id: string;
  config: Record<string, unknown>;
  secrets: SecretValues;
  config_revision: number;
  log_level: LogLevel;
  stub_mode: boolean;
  health: HealthSettings | null;
  health_status: HealthState;
  health_detail: string | null;
  health_http_status: number | null;
  health_latency_ms: number | null;
  health_checked_at: Date | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = `id::int AS id, name, model_id, config, secrets, config_revision::int AS config_revision, log_level, stub_mode, health,
  health_status, health_detail, health_http_status, health_latency_ms, health_checked_at, created_by, created_at, updated_at`;

// ---- configuration: secrets apart, markers resolved ----
// Reads go through adapter's RFC 6901 helpers; writing at a pointer (creating the containers on the way) is this
// module's own need.
function setAt(doc: Record<string, unknown>, pointer: string, value: unknown): void {
  const tokens = parsePointer(pointer);
  const last = tokens.pop() as string;
  let node: Record<string, unknown> = doc;
  for (const t of tokens) {
    const next = node[t];
    if (next === null || typeof next !== 'object') {
      node[t] = {};
    }
    node = node[t] as Record<string, unknown>;
  }
  node[last] = value;
}

function deleteAt(doc: unknown, pointer: string): void {
  const tokens = parsePointer(pointer);
  const last = tokens.pop() as string;
  const parent = getByPointer(doc, toPointer(tokens));
  if (parent !== null && typeof parent === 'object') delete (parent as Record<string, unknown>)[last];
}

/** A configuration ready to store: without secrets and without `logging.level` (kept in its own column). */
export interface PreparedConfig {
  config: Record<string, unknown>;
  secrets: SecretValues;
  logLevel: LogLevel;
}

/**
 * Turns a submitted configuration into what is stored. A secret field holding the redaction marker keeps the
 * stored secret. The configuration is validated (defaults applied) and client certificate material checked.
 * @param prefix where the configuration sits in the request body, for the 422's field paths (`/body/config`).
 * @throws CodedError VALIDATION_FAILED (422) naming each field; messages never carry a submitted value.
 */
export function prepareConfig(input: unknown, stored: SecretValues, prefix: string): PreparedConfig {
  const errors: FieldError[] = [];
  const copy: unknown = structuredClone(input);
  if (copy !== null && typeof copy === 'object' && !Array.isArray(copy)) {
    for (const pointer of SECRET_CONFIG_PATHS) {
      if (getByPointer(copy, pointer) !== REDACTED) continue;
      if (stored[pointer] !== undefined) setAt(copy as Record<string, unknown>, pointer, stored[pointer]);
      else errors.push({ path: `${prefix}${pointer}`, message: `is the redaction marker ${REDACTED} but no secret is stored for it` });
    }
  }
  if (errors.length > 0) throw validationFailed(describe(errors), errors);

  // Stub responses (stub.ts) are this runtime's business, not the transport's: they are checked apart and kept out
  // of what the HTTP client is built from (fullConfig drops them again).
  let stub: unknown;
  if (copy !== null && typeof copy === 'object' && !Array.isArray(copy) && STUB_CONFIG_KEY in copy) {
    stub = (copy as Record<string, unknown>)[STUB_CONFIG_KEY];
    delete (copy as Record<string, unknown>)[STUB_CONFIG_KEY];
  }
  const result = validateIntegrationConfig(copy);
  const stubChecked = stub === undefined ? undefined : checkStubConfig(stub, `${prefix}/${STUB_CONFIG_KEY}`);
  if (!result.ok || (stubChecked && !stubChecked.ok)) {
    const fieldErrors = [
      ...(result.ok ? [] : result.errors.map((e) => ({ path: `${prefix}${e.path}`, message: e.message }))),
      ...(stubChecked && !stubChecked.ok ? stubChecked.errors : []),
    ];
    throw validationFailed(describe(fieldErrors), fieldErrors);
  }
  const config = result.config as unknown as Record<string, unknown>;
  if (stubChecked?.ok) config[STUB_CONFIG_KEY] = stubChecked.stub;
  // A secret field may hold a reference to an external backend (vault://…), resolved when the client is built; one
  // that starts like a reference but does not parse is refused now rather than failing every call.
  const badReferences: FieldError[] = [];
  for (const pointer of SECRET_CONFIG_PATHS) {
    const v = getByPointer(config, pointer);
    if (!looksLikeSecretReference(v)) continue;
    const parsed = parseSecretReference(v);
    if (!parsed.ok) badReferences.push({ path: `${prefix}${pointer}`, message: `is not a valid secret reference: ${parsed.message}` });
  }
  // The proxy's `secrets_manager` auth mode takes both credentials from a backend: each must be a reference
  // (resolved by the transport before each call), the user name included, though it is no secret field.
  const proxyAuth = result.config.proxy.auth;
  if (proxyAuth.mode === 'secrets_manager') {
    for (const field of ['username', 'password'] as const) {
      const v = proxyAuth[field] ?? '';
      const parsed = parseSecretReference(v);
      if (!parsed.ok && !badReferences.some((e) => e.path === `${prefix}/proxy/auth/${field}`)) {
        const why = looksLikeSecretReference(v) ? parsed.message : 'is not one';
        badReferences.push({ path: `${prefix}/proxy/auth/${field}`, message: `must be a secret reference (vault://, ccp://, azurekv://, awssm://, conjur://) in auth mode secrets_manager: it ${why}` });
      }
    }
  }
  if (badReferences.length > 0) throw validationFailed(describe(badReferences), badReferences);
  const mtls = result.config.mtls;
  if (mtls) {
    // A key held in a backend is checked against the certificate when it is read, not here.
    const issues = checkMtlsMaterial(mtls.cert, looksLikeSecretReference(mtls.key) ? undefined : mtls.key, mtls.ca);
    if (issues.length > 0) {
      const fieldErrors = issues.map((e) => ({ path: `${prefix}${e.path}`, message: e.message }));
      throw validationFailed(describe(fieldErrors), fieldErrors);
    }
  }
  const secrets: SecretValues = {};
  for (const pointer of SECRET_CONFIG_PATHS) {
    const v = getByPointer(config, pointer);
    if (v === undefined) continue;
    secrets[pointer] = v;
    deleteAt(config, pointer);
  }
  const logLevel = result.config.logging.level;
  delete (config.logging as Record<string, unknown>).level;
  return { config, secrets, logLevel };
}

function describe(errors: FieldError[]): string {
  return errors.map((e) => `${e.path.replace(/^\/body\/?/, '') || 'body'} ${e.message}`).join('; ');
}

/**
 * The stored configuration with the opened `secrets` put back and the log level in place: what the runtime client
 * gets. Build it only where the client is built, and keep it nowhere else.
 */
export function fullConfig(r: Pick<IntegrationRecord, 'config' | 'log_level'>, secrets: SecretValues): Record<string, unknown> {
  const out = structuredClone(r.config);
  // Stub responses are answered by the runtime itself, never part of a connection.
  delete out[STUB_CONFIG_KEY];
  for (const [pointer, v] of Object.entries(secrets)) setAt(out, pointer, v);
  setAt(out, '/logging/level', r.log_level);
  return out;
}

/** The configuration as reads answer it: every secret that is set shows as the redaction marker. */
export function redactedConfig(r: Pick<IntegrationRecord, 'config' | 'secrets' | 'log_level'>): Record<string, unknown> {
  const out = structuredClone(r.config);
  for (const pointer of Object.keys(r.secrets)) setAt(out, pointer, REDACTED);
  setAt(out, '/logging/level', r.log_level);
  return out;
}

/**
 * The record's secrets opened (as they were written: a reference stays a reference). Rows written before secrets were
 * sealed open to themselves.
 * @throws SealedSecretError / SecretsKeyError (adapter/secrets) when a value does not open.
 */
export async function openIntegrationSecrets(q: Queryable, r: Pick<IntegrationRecord, 'id' | 'secrets'>): Promise<SecretValues> {
  const out: SecretValues = {};
  for (const [pointer, v] of Object.entries(r.secrets)) out[pointer] = await openSecret(q, v, secretPlace.integration(r.id, pointer));
  return out;
}

/**
 * What is stored for `secrets` (plain) of integration `id`: each sealed for its place. A value equal to the one
 * already stored (`storedOpened`, opened from `stored`) keeps its sealed form, so an update that does not touch a
 * secret does not rewrite it.
 */
export async function sealIntegrationSecrets(
  q: Queryable,
  id: number,
  secrets: SecretValues,
  stored: { sealed: SecretValues; opened: SecretValues } = { sealed: {}, opened: {} },
): Promise<SecretValues> {
  const out: SecretValues = {};
  for (const [pointer, v] of Object.entries(secrets)) {
    const same = Object.hasOwn(stored.opened, pointer) && JSON.stringify(stored.opened[pointer]) === JSON.stringify(v);
    out[pointer] = same ? stored.sealed[pointer] : await sealSecret(q, v, secretPlace.integration(id, pointer));
  }
  return out;
}

/** A fresh integration id, taken before the row is written: its secrets are sealed for it. */
async function nextIntegrationId(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ id: number }>(`SELECT nextval(pg_get_serial_sequence('integrations', 'id'))::int AS id`);
  return rows[0]!.id;
}

/** Pointers of the secrets that differ between two opened sets (added, removed or changed): audited, never the values. */
function changedSecrets(before: SecretValues, after: SecretValues): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k])).sort();
}

// ---- reads ----

/**
 * What tells whether a cached integration (and its model) is still current, read by name in one round trip: the
 * configuration revision (secrets, tokens), the row's and the model's `updated_at` as text (a JS Date would drop the
 * microseconds, and two changes within one millisecond must still differ).
 */
export interface IntegrationVersion {
  id: number;
  model_id: string;
  config_revision: number;
  stamp: string;
  model_stamp: string;
}

export async function integrationVersionByName(q: Queryable, name: string): Promise<IntegrationVersion | undefined> {
  const { rows } = await q.query<IntegrationVersion>(
    `SELECT i.id::int AS id, i.model_id, i.config_revision::int AS config_revision, i.updated_at::text AS stamp, m.updated_at::text AS model_stamp
       FROM integrations i JOIN integration_models m ON m.id = i.model_id WHERE i.name = $1`,
    [name],
  );
  return rows[0];
}

/** Every integration's name, in order. */
export async function integrationNames(q: Queryable): Promise<string[]> {
  const { rows } = await q.query<{ name: string }>('SELECT name FROM integrations ORDER BY name');
  return rows.map((r) => r.name);
}

export async function loadIntegration(q: Queryable, id: number, lock = false): Promise<IntegrationRecord> {
  const { rows } = await q.query<IntegrationRecord>(`SELECT ${COLUMNS} FROM integrations WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
  const row = rows[0];
  if (!row) throw notFound(`integration ${id} does not exist`);
  return row;
}

async function roleNames(q: Queryable, ids: number[]): Promise<Map<number, string[]>> {
  const { rows } = await q.query<{ integration_id: number; kind: string }>(
    'SELECT integration_id::int AS integration_id, kind FROM integration_roles WHERE integration_id = ANY($1::bigint[])',
    [ids],
  );
  const out = new Map<number, string[]>();
  for (const r of rows) out.set(r.integration_id, [...(out.get(r.integration_id) ?? []), r.kind]);
  for (const [k, kinds] of out) out.set(k, kinds.sort(byRoleKind));
  return out;
}

const byRoleKind = (a: string, b: string) => roleRank(a) - roleRank(b);
const roleRank = (k: string) => (k === 'admin' ? -1 : HTTP_METHODS.indexOf(k as (typeof HTTP_METHODS)[number]));

function toView(r: IntegrationRecord, kinds: string[]): IntegrationView {
  return {
    id: r.id,
    name: r.name,
    model_id: r.model_id,
    config: redactedConfig(r),
    log_level: r.log_level,
    stub_mode: r.stub_mode,
    health: r.health,
    health_status: {
      status: r.health_status,
      checked_at: r.health_checked_at ? r.health_checked_at.toISOString() : null,
      detail: r.health_detail,
      http_status: r.health_http_status,
      latency_ms: r.health_latency_ms,
    },
    roles: kinds.map((k) => integrationRoleName(r.name, k)),
    created_by: r.created_by,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

export async function readIntegration(q: Queryable, id: number): Promise<IntegrationView> {
  const r = await loadIntegration(q, id);
  return toView(r, (await roleNames(q, [id])).get(id) ?? []);
}

export async function listIntegrations(q: Queryable): Promise<IntegrationView[]> {
  const { rows } = await q.query<IntegrationRecord>(`SELECT ${COLUMNS} FROM integrations ORDER BY name`);
  const roles = await roleNames(q, rows.map((r) => r.id));
  return rows.map((r) => toView(r, roles.get(r.id) ?? []));
}

// ---- writes ----

/** The part of an integration an audit row shows: secrets as markers (then stripped by name), never values. */
function auditSnapshot(r: Pick<IntegrationRecord, 'name' | 'model_id' | 'config' | 'secrets' | 'log_level' | 'stub_mode' | 'health'>) {
  return { name: r.name, model_id: r.model_id, config: redactedConfig(r), log_level: r.log_level, stub_mode: r.stub_mode, health: r.health };
}

/**
 * Checks a health setting against the model: the operation exists and needs no input (the check sends none).
 * @throws CodedError VALIDATION_FAILED (422) at `/body/health/operation_id`.
 */
function checkHealthSettings(model: IntegrationModel, health: HealthSettings | null | undefined, at: string): void {
  if (!health) return;
  const op = model.operations.find((o) => o.operationId === health.operation_id);
  if (!op) throw invalidField(`${at}/operation_id`, `is not an operation of model '${model.id}'`);
  const schema = operationInputSchema(op) as { required?: string[] };
  if ((schema.required ?? []).length > 0) {
    throw invalidField(`${at}/operation_id`, `needs input (${(schema.required ?? []).join(', ')}); a health check sends none`);
  }
}

export interface IntegrationCreateInput {
  name: string;
  model_id: string;
  config: Record<string, unknown>;
  stub_mode?: boolean;
  health?: HealthSettings | null;
}

function uniqueName<T>(name: string, run: () => Promise<T>): Promise<T> {
  return run().catch((e: unknown) => {
    if (sqlState(e) === PgErrorCode.UNIQUE_VIOLATION) throw conflict(`an integration named '${name}' exists`);
    throw e;
  });
}

/**
 * Creates an integration and its roles (admin plus one per HTTP verb of the model).
 * @throws CodedError VALIDATION_FAILED (422) for an unknown model, a bad configuration or health setting;
 * CONFLICT (409) when the name is taken.
 */
export async function createIntegration(tx: Queryable, model: IntegrationModel | undefined, input: IntegrationCreateInput, actor: Actor): Promise<number> {
  if (!model) throw invalidField('/body/model_id', `names no integration model`);
  const prepared = prepareConfig(input.config, {}, '/body/config');
  checkStubOperations(model, prepared.config, '/body/config');
  checkHealthSettings(model, input.health, '/body/health');
  const health = input.health ? withHealthDefaults(input.health) : null;
  const id = await nextIntegrationId(tx);
  const sealed = await sealIntegrationSecrets(tx, id, prepared.secrets);
  await uniqueName(input.name, () =>
    tx.query(
      `INSERT INTO integrations (id, name, model_id, config, secrets, log_level, stub_mode, health, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [id, input.name, model.id, JSON.stringify(prepared.config), JSON.stringify(sealed), prepared.logLevel, input.stub_mode ?? false, health && JSON.stringify(health), actor.triggeredBy],
    ),
  );
  await insertRoles(tx, id, model);
  const after = {
    ...auditSnapshot({ name: input.name, model_id: model.id, config: prepared.config, secrets: prepared.secrets, log_level: prepared.logLevel, stub_mode: input.stub_mode ?? false, health }),
    credentials_changed: Object.keys(prepared.secrets).sort(),
  };
  await writeAudit(tx, { entity: 'integration', entityId: id, action: 'create', after, triggeredBy: actor.triggeredBy, requestId: actor.requestId });
  return id;
}

/** @throws CodedError VALIDATION_FAILED (422) naming each stub response whose operation the model lacks. */
function checkStubOperations(model: IntegrationModel, config: Record<string, unknown>, prefix: string): void {
  const errors = unknownStubOperations(model, config, `${prefix}/${STUB_CONFIG_KEY}`);
  if (errors.length > 0) throw validationFailed(describe(errors), errors);
}

function withHealthDefaults(h: HealthSettings): HealthSettings {
  return { operation_id: h.operation_id, ...(h.interval_s !== undefined ? { interval_s: h.interval_s } : {}), slow_ms: h.slow_ms ?? 2000 };
}

async function insertRoles(tx: Queryable, integrationId: number, model: IntegrationModel): Promise<void> {
  await tx.query(
    `INSERT INTO integration_roles (integration_id, kind) SELECT $1, k FROM unnest($2::text[]) AS k ON CONFLICT DO NOTHING`,
    [integrationId, integrationRoleKinds(model)],
  );
}

export interface IntegrationUpdateInput {
  name?: string;
  config?: Record<string, unknown>;
  stub_mode?: boolean;
  health?: HealthSettings | null;
}

/** `next.secrets` and `openedBefore` are opened (plain) values; `before.secrets` is the stored (sealed) set. */
async function applyUpdate(
  tx: Queryable,
  before: IntegrationRecord,
  openedBefore: SecretValues,
  next: Pick<IntegrationRecord, 'name' | 'config' | 'secrets' | 'log_level' | 'stub_mode' | 'health'>,
  action: string,
  actor: Actor,
): Promise<void> {
  const credentials = changedSecrets(openedBefore, next.secrets);
  const configChanged = JSON.stringify(before.config) !== JSON.stringify(next.config) || credentials.length > 0;
  const sealed = await sealIntegrationSecrets(tx, before.id, next.secrets, { sealed: before.secrets, opened: openedBefore });
  await uniqueName(next.name, () =>
    tx.query(
      `UPDATE integrations SET name = $2, config = $3, secrets = $4, log_level = $5, stub_mode = $6, health = $7,
         config_revision = config_revision + $8, updated_at = now() WHERE id = $1`,
      [before.id, next.name, JSON.stringify(next.config), JSON.stringify(sealed), next.log_level, next.stub_mode, next.health && JSON.stringify(next.health), configChanged ? 1 : 0],
    ),
  );
  await writeAudit(tx, {
    entity: 'integration',
    entityId: before.id,
    action,
    before: auditSnapshot({ ...before }),
    after: { ...auditSnapshot({ ...next, model_id: before.model_id }), ...(credentials.length > 0 ? { credentials_changed: credentials } : {}) },
    triggeredBy: actor.triggeredBy,
    requestId: actor.requestId,
  });
}

/** @throws CodedError NOT_FOUND (404), VALIDATION_FAILED (422), CONFLICT (409) on a taken name. */
export async function updateIntegration(tx: Queryable, model: IntegrationModel | undefined, id: number, input: IntegrationUpdateInput, actor: Actor): Promise<void> {
  const before = await loadIntegration(tx, id, true);
  const opened = await openIntegrationSecrets(tx, before);
  let { config, log_level } = before;
  let secrets = opened;
  if (input.config !== undefined) {
    const prepared = prepareConfig(input.config, opened, '/body/config');
    if (model) checkStubOperations(model, prepared.config, '/body/config');
    ({ config, secrets } = prepared);
    log_level = prepared.logLevel;
  }
  let health = before.health;
  if (input.health !== undefined) {
    if (!model) throw notFound(`integration model '${before.model_id}' does not exist`);
    checkHealthSettings(model, input.health, '/body/health');
    health = input.health ? withHealthDefaults(input.health) : null;
  }
  const next = { name: input.name ?? before.name, config, secrets, log_level, stub_mode: input.stub_mode ?? before.stub_mode, health };
  await applyUpdate(tx, before, opened, next, 'update', actor);
}

/**
 * The advanced view's PUT: the whole configuration, `logging.level` included. With the integration's `model`, stub
 * responses are checked to name its operations.
 */
export async function replaceIntegrationConfig(tx: Queryable, id: number, input: unknown, actor: Actor, model?: IntegrationModel): Promise<void> {
  const before = await loadIntegration(tx, id, true);
  const opened = await openIntegrationSecrets(tx, before);
  const prepared = prepareConfig(input, opened, '/body');
  if (model) checkStubOperations(model, prepared.config, '/body');
  await applyUpdate(tx, before, opened, { ...before, config: prepared.config, secrets: prepared.secrets, log_level: prepared.logLevel }, 'update_config', actor);
}

export async function setIntegrationLogLevel(tx: Queryable, id: number, level: LogLevel, actor: Actor): Promise<void> {
  const before = await loadIntegration(tx, id, true);
  if (before.log_level === level) return;
  await tx.query('UPDATE integrations SET log_level = $2, updated_at = now() WHERE id = $1', [id, level]);
  await writeAudit(tx, {
    entity: 'integration',
    entityId: id,
    action: 'set_log_level',
    before: { log_level: before.log_level },
    after: { log_level: level },
    triggeredBy: actor.triggeredBy,
    requestId: actor.requestId,
  });
}

/** A copy under a new name with its own fresh roles; grants are not copied. @throws CONFLICT (409), NOT_FOUND (404) */
export async function cloneIntegration(tx: Queryable, model: IntegrationModel | undefined, id: number, name: string, actor: Actor): Promise<number> {
  const source = await loadIntegration(tx, id);
  if (!model) throw notFound(`integration model '${source.model_id}' does not exist`);
  // Each sealed value opens only at its own place (its integration's id): the copy's secrets are sealed anew for it.
  const cloneId = await nextIntegrationId(tx);
  const sealed = await sealIntegrationSecrets(tx, cloneId, await openIntegrationSecrets(tx, source));
  await uniqueName(name, () =>
    tx.query(
      `INSERT INTO integrations (id, name, model_id, config, secrets, log_level, stub_mode, health, created_by)
       SELECT $4, $2, model_id, config, $5, log_level, stub_mode, health, $3 FROM integrations WHERE id = $1`,
      [id, name, actor.triggeredBy, cloneId, JSON.stringify(sealed)],
    ),
  );
  await insertRoles(tx, cloneId, model);
  await writeAudit(tx, {
    entity: 'integration',
    entityId: cloneId,
    action: 'clone',
    after: { ...auditSnapshot({ ...source, name }), cloned_from: { id: source.id, name: source.name } },
    triggeredBy: actor.triggeredBy,
    requestId: actor.requestId,
  });
  return cloneId;
}

export async function deleteIntegration(tx: Queryable, id: number, actor: Actor): Promise<void> {
  const before = await loadIntegration(tx, id, true);
  await tx.query('DELETE FROM integrations WHERE id = $1', [id]);
  await writeAudit(tx, { entity: 'integration', entityId: id, action: 'delete', before: auditSnapshot(before), triggeredBy: actor.triggeredBy, requestId: actor.requestId });
}

// ---- health ----

/** Integrations whose health `interval_s` has passed since their last check, by id. */
export async function dueHealthChecks(q: Queryable): Promise<number[]> {
  const { rows } = await q.query<{ id: number }>(
    `SELECT id::int AS id FROM integrations
      WHERE health->>'interval_s' IS NOT NULL
        AND (health_checked_at IS NULL OR health_checked_at <= now() - make_interval(secs => (health->>'interval_s')::int))
      ORDER BY id`,
  );
  return rows.map((r) => r.id);
}

export interface HealthResult {
  status: Exclude<HealthState, 'unknown'>;
  detail: string | null;
  http_status: number | null;
  latency_ms: number;
}

/** The integration's stored health state, its row locked (a check's result is compared with it); undefined when gone. */
export async function lockHealthState(q: Queryable, id: number): Promise<HealthState | undefined> {
  const { rows } = await q.query<{ health_status: HealthState }>('SELECT health_status FROM integrations WHERE id = $1 FOR UPDATE', [id]);
  return rows[0]?.health_status;
}

/** Stores a health check's result (not audited: it is an observation, not a change anyone made). */
export async function recordHealth(q: Queryable, id: number, r: HealthResult): Promise<HealthStatusView> {
  const { rows } = await q.query<{ checked_at: Date }>(
    `UPDATE integrations SET health_status = $2, health_detail = $3, health_http_status = $4, health_latency_ms = $5, health_checked_at = now()
      WHERE id = $1 RETURNING health_checked_at AS checked_at`,
    [id, r.status, r.detail, r.http_status, r.latency_ms],
  );
  if (!rows[0]) throw notFound(`integration ${id} does not exist`);
  return { status: r.status, checked_at: rows[0].checked_at.toISOString(), detail: r.detail, http_status: r.http_status, latency_ms: r.latency_ms };
}

// ---- roles and grants ----

export interface RoleGrantView {
  token_id: number;
  token_name: string;
  granted_by: string;
  granted_at: string;
}

export interface IntegrationRoleView {
  name: string;
  kind: string;
  source: string;
  tokens: RoleGrantView[];
}

export async function listIntegrationRoles(q: Queryable, id: number): Promise<IntegrationRoleView[]> {
  const integration = await loadIntegration(q, id);
  const { rows: roles } = await q.query<{ id: number; kind: string }>('SELECT id::int AS id, kind FROM integration_roles WHERE integration_id = $1', [id]);
  const { rows: grants } = await q.query<{ role_id: number; token_id: number; token_name: string; granted_by: string; granted_at: Date }>(
    `SELECT g.role_id::int AS role_id, g.token_id::int AS token_id, t.name AS token_name, g.granted_by, g.granted_at
       FROM api_token_integration_roles g JOIN api_tokens t ON t.id = g.token_id
      WHERE g.role_id = ANY($1::bigint[]) ORDER BY g.token_id`,
    [roles.map((r) => r.id)],
  );
  return roles
    .sort((a, b) => byRoleKind(a.kind, b.kind))
    .map((r) => ({
      name: integrationRoleName(integration.name, r.kind),
      kind: r.kind,
      source: integration.model_id,
      tokens: grants
        .filter((g) => g.role_id === r.id)
        .map((g) => ({ token_id: g.token_id, token_name: g.token_name, granted_by: g.granted_by, granted_at: g.granted_at.toISOString() })),
    }));
}

/** `admin`, a verb (any case), or the full name `<integration>:<kind>`, as the kind stored. */
function roleKind(integrationName: string, role: string): string {
  const short = role.startsWith(`${integrationName}:`) ? role.slice(integrationName.length + 1) : role;
  return short.toLowerCase() === 'admin' ? 'admin' : short.toUpperCase();
}

async function findRole(q: Queryable, integration: IntegrationRecord, role: string): Promise<{ id: number; kind: string }> {
  const kind = roleKind(integration.name, role);
  const { rows } = await q.query<{ id: number }>('SELECT id::int AS id FROM integration_roles WHERE integration_id = $1 AND kind = $2', [integration.id, kind]);
  if (!rows[0]) throw notFound(`integration '${integration.name}' has no role '${role}'`);
  return { id: rows[0].id, kind };
}

/** Idempotent. @throws CodedError NOT_FOUND (404) for an unknown role or no live token. */
export async function grantIntegrationRole(tx: Queryable, id: number, role: string, tokenId: number, actor: Actor): Promise<IntegrationRoleView> {
  const integration = await loadIntegration(tx, id);
  const r = await findRole(tx, integration, role);
  const { rows: tokens } = await tx.query<{ name: string }>('SELECT name FROM api_tokens WHERE id = $1 AND revoked_at IS NULL', [tokenId]);
  if (!tokens[0]) throw notFound(`API token ${tokenId} does not exist or is revoked`);
  const inserted = await tx.query(
    'INSERT INTO api_token_integration_roles (token_id, role_id, granted_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
    [tokenId, r.id, actor.triggeredBy],
  );
  if (inserted.rowCount > 0) {
    await writeAudit(tx, {
      entity: 'integration',
      entityId: id,
      action: 'grant_role',
      after: { role: integrationRoleName(integration.name, r.kind), token_id: tokenId, token_name: tokens[0].name },
      triggeredBy: actor.triggeredBy,
      requestId: actor.requestId,
    });
  }
  const roles = await listIntegrationRoles(tx, id);
  return roles.find((x) => x.kind === r.kind) as IntegrationRoleView;
}

/** @throws CodedError NOT_FOUND (404) when the token does not hold the role. */
export async function revokeIntegrationRole(tx: Queryable, id: number, role: string, tokenId: number, actor: Actor): Promise<void> {
  const integration = await loadIntegration(tx, id);
  const r = await findRole(tx, integration, role);
  const deleted = await tx.query('DELETE FROM api_token_integration_roles WHERE token_id = $1 AND role_id = $2', [tokenId, r.id]);
  if (deleted.rowCount === 0) throw notFound(`API token ${tokenId} does not hold role '${integrationRoleName(integration.name, r.kind)}'`);
  await writeAudit(tx, {
    entity: 'integration',
    entityId: id,
    action: 'revoke_role',
    before: { role: integrationRoleName(integration.name, r.kind), token_id: tokenId },
    triggeredBy: actor.triggeredBy,
    requestId: actor.requestId,
  });
}

/**
 * Whether API token `tokenId` holds the integration's admin role or one of `kinds` (verbs such as `GET`). Who may
 * invoke what is the caller's policy (the admin key and the superadmin role need no grant); this only reads grants.
 */
export async function tokenHoldsIntegrationRole(q: Queryable, tokenId: number, integrationId: number, kinds: readonly string[]): Promise<boolean> {
  const { rowCount } = await q.query(
    `SELECT 1 FROM api_token_integration_roles g JOIN integration_roles r ON r.id = g.role_id
      WHERE g.token_id = $1 AND r.integration_id = $2 AND r.kind = ANY($3::text[])`,
    [tokenId, integrationId, ['admin', ...kinds]],
  );
  return rowCount > 0;
}
