import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  PgErrorCode,
  conflict,
  notFound,
  sqlState,
  validationFailed,
  writeAudit,
  type Actor,
  type Database,
  type FieldError,
  type Logger,
  type Queryable,
} from '../../adapter';
import { IntegrationModelError, type ModelIssue } from '../errors';
import { loadIntegrationModel } from '../model';
import { integrationRoleKinds } from '../tasks';
import type { DroppedOperation, HttpMethod, IntegrationModel, SecuritySchemeKind } from '../types';

export type ModelSource = 'api' | 'file';

export interface ModelOperationSummary {
  operationId: string;
  method: HttpMethod;
  path: string;
  summary?: string;
}

/** A model as the API answers it (the document itself stays in the table). */
export interface IntegrationModelView {
  id: string;
  title: string;
  version: string;
  description?: string;
  source_version: string;
  source: ModelSource;
  verbs: HttpMethod[];
  security_schemes: { name: string; kind: SecuritySchemeKind }[];
  operations: ModelOperationSummary[];
  dropped: DroppedOperation[];
  warnings: ModelIssue[];
  integration_count: number;
  created_by: string;
  created_at: string;
  updated_at: string;
}

export interface IntegrationModelSummaryView {
  id: string;
  title: string;
  version: string;
  source_version: string;
  source: ModelSource;
  operation_count: number;
  dropped_count: number;
  integration_count: number;
  created_at: string;
  updated_at: string;
}

interface ModelRow {
  id: string;
  title: string;
  version: string;
  source_version: string;
  document: Record<string, unknown>;
  operations: ModelOperationSummary[];
  dropped: DroppedOperation[];
  warnings: ModelIssue[];
  verbs: HttpMethod[];
  source: ModelSource;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  integration_count: number;
}

const SELECT = `SELECT m.id, m.title, m.version, m.source_version, m.document, m.operations, m.dropped, m.warnings, m.verbs,
    m.source, m.created_by, m.created_at, m.updated_at,
    (SELECT count(*)::int FROM integrations i WHERE i.model_id = m.id) AS integration_count
  FROM integration_models m`;

/**
 * Parses an upload (the OpenAPI document as JSON, or `{document: <YAML or JSON text>}`) into a model.
 * @throws CodedError VALIDATION_FAILED (422) listing every problem, each at `/body/...` (or `/body/document/...` for
 * text, with line and column), and the loader's `issues` as they are.
 */
export async function parseModelUpload(body: Record<string, unknown>): Promise<IntegrationModel> {
  const asText = typeof body.document === 'string';
  const source: string | object = asText ? (body.document as string) : body;
  try {
    return await loadIntegrationModel(source);
  } catch (e) {
    if (!(e instanceof IntegrationModelError)) throw e;
    const prefix = asText ? '/body/document' : '/body';
    const errors: FieldError[] = e.issues.map((i) => ({
      path: `${prefix}${i.path}`,
      message: i.line !== undefined ? `${i.message} (line ${i.line}${i.column !== undefined ? `, column ${i.column}` : ''})` : i.message,
    }));
    throw validationFailed(e.message, errors, { issues: e.issues });
  }
}

function summaryOf(model: IntegrationModel): ModelOperationSummary[] {
  return model.operations.map((o) => ({
    operationId: o.operationId,
    method: o.method,
    path: o.path,
    ...(o.summary !== undefined ? { summary: o.summary } : {}),
  }));
}

const INSERT = `INSERT INTO integration_models (id, title, version, source_version, document, operations, dropped, warnings, verbs, source, created_by)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`;

function insertParams(model: IntegrationModel, source: ModelSource, by: string): unknown[] {
  return [
    model.id,
    model.title,
    model.version,
    model.sourceVersion,
    JSON.stringify(model.document),
    JSON.stringify(summaryOf(model)),
    JSON.stringify(model.dropped),
    JSON.stringify(model.warnings),
    model.verbs,
    source,
    by,
  ];
}

/** Stores a new model. @throws CodedError CONFLICT (409) when a model with its id exists. */
export async function createIntegrationModel(tx: Queryable, model: IntegrationModel, actor: Actor): Promise<void> {
  try {
    await tx.query(INSERT, insertParams(model, 'api', actor.triggeredBy));
  } catch (e) {
    if (sqlState(e) === PgErrorCode.UNIQUE_VIOLATION) {
      throw conflict(`integration model '${model.id}' exists; publish the document under a new info.version`);
    }
    throw e;
  }
  await writeAudit(tx, {
    entity: 'integration_model',
    entityId: model.id,
    action: 'create',
    after: { id: model.id, operations: model.operations.length, dropped: model.dropped },
    triggeredBy: actor.triggeredBy,
    requestId: actor.requestId,
  });
}

/**
 * Stores or replaces a model read from a file, and adds the roles for verbs the new version uses to the
 * integrations already built on it (roles are never taken away by a reload: grants would silently vanish).
 */
export async function upsertIntegrationModel(
  tx: Queryable,
  model: IntegrationModel,
  by: string,
  /** SHA-256 (hex) of the file text the model was read from: the next start skips that file while it is unchanged. */
  sourceSha256: string | null = null,
): Promise<'created' | 'updated' | 'unchanged'> {
  // jsonb equality: key order in the stored document is the database's, not the file's.
  const { rows } = await tx.query<{ same: boolean; sha: string | null }>(
    'SELECT document = $2::jsonb AS same, source_sha256 AS sha FROM integration_models WHERE id = $1 FOR UPDATE',
    [model.id, JSON.stringify(model.document)],
  );
  const existing = rows[0];
  if (existing?.same) {
    // Same document from a file not seen before (reformatted, or first start after the hash was introduced).
    if (sourceSha256 !== null && existing.sha !== sourceSha256) {
      await tx.query('UPDATE integration_models SET source_sha256 = $2 WHERE id = $1', [model.id, sourceSha256]);
    }
    return 'unchanged';
  }
  if (!existing) {
    await tx.query(INSERT, insertParams(model, 'file', by));
    if (sourceSha256 !== null) await tx.query('UPDATE integration_models SET source_sha256 = $2 WHERE id = $1', [model.id, sourceSha256]);
  } else {
    await tx.query(
      `UPDATE integration_models SET title = $2, version = $3, source_version = $4, document = $5, operations = $6, dropped = $7,
         warnings = $8, verbs = $9, source = $10, source_sha256 = $11, updated_at = now() WHERE id = $1`,
      [...insertParams(model, 'file', by).slice(0, 10), sourceSha256],
    );
    await tx.query(
      `INSERT INTO integration_roles (integration_id, kind)
         SELECT i.id, k.kind FROM integrations i CROSS JOIN unnest($2::text[]) AS k(kind) WHERE i.model_id = $1
       ON CONFLICT (integration_id, kind) DO NOTHING`,
      [model.id, integrationRoleKinds(model)],
    );
  }
  await writeAudit(tx, {
    entity: 'integration_model',
    entityId: model.id,
    action: existing ? 'update' : 'create',
    after: { id: model.id, operations: model.operations.length, dropped: model.dropped },
    triggeredBy: by,
  });
  return existing ? 'updated' : 'created';
}

function toView(r: ModelRow, model?: IntegrationModel): IntegrationModelView {
  const description = model?.description ?? (typeof (r.document.info as Record<string, unknown> | undefined)?.description === 'string'
    ? ((r.document.info as Record<string, unknown>).description as string)
    : undefined);
  const schemes = (r.document.components as Record<string, unknown> | undefined)?.securitySchemes;
  return {
    id: r.id,
    title: r.title,
    version: r.version,
    ...(description !== undefined ? { description } : {}),
    source_version: r.source_version,
    source: r.source,
    verbs: r.verbs,
    security_schemes: model
      ? model.securitySchemes.map((s) => ({ name: s.name, kind: s.kind }))
      : Object.keys(schemes && typeof schemes === 'object' ? schemes : {}).map((name) => ({ name, kind: 'unsupported' as const })),
    operations: r.operations,
    dropped: r.dropped,
    warnings: r.warnings,
    integration_count: r.integration_count,
    created_by: r.created_by,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

export async function listIntegrationModels(q: Queryable): Promise<IntegrationModelSummaryView[]> {
  const { rows } = await q.query<ModelRow>(`${SELECT} ORDER BY m.id`);
  return rows.map((r) => ({
    id: r.id,
    title: r.title,
    version: r.version,
    source_version: r.source_version,
    source: r.source,
    operation_count: r.operations.length,
    dropped_count: r.dropped.length,
    integration_count: r.integration_count,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  }));
}

/** @throws CodedError NOT_FOUND (404) */
export async function readIntegrationModel(q: Queryable, models: ModelCache, id: string): Promise<IntegrationModelView> {
  const { rows } = await q.query<ModelRow>(`${SELECT} WHERE m.id = $1`, [id]);
  const row = rows[0];
  if (!row) throw notFound(`integration model '${id}' does not exist`);
  return toView(row, await models.get(q, id));
}

/** @throws CodedError NOT_FOUND (404), CONFLICT (409) while an integration uses the model. */
export async function deleteIntegrationModel(tx: Queryable, id: string, actor: Actor): Promise<void> {
  const { rows } = await tx.query<{ name: string }>('SELECT name FROM integrations WHERE model_id = $1 ORDER BY name', [id]);
  if (rows.length > 0) {
    throw conflict(`integration model '${id}' is used by ${rows.length} integration(s): ${rows.map((r) => r.name).join(', ')}`);
  }
  let deleted;
  try {
    deleted = await tx.query('DELETE FROM integration_models WHERE id = $1', [id]);
  } catch (e) {
    // An integration created between the check and the delete.
    if (sqlState(e) === PgErrorCode.FOREIGN_KEY_VIOLATION) throw conflict(`integration model '${id}' is in use`);
    throw e;
  }
  if (deleted.rowCount === 0) throw notFound(`integration model '${id}' does not exist`);
  await writeAudit(tx, { entity: 'integration_model', entityId: id, action: 'delete', before: { id }, triggeredBy: actor.triggeredBy, requestId: actor.requestId });
}

/**
 * Loaded models by id, so tasks and invocations do not re-validate a document per request. An entry is reused
 * while the row's `updated_at` is unchanged (a file reload replaces a model in place).
 */
export class ModelCache {
  readonly #entries = new Map<string, { stamp: string; model: Promise<IntegrationModel> }>();

  /** The model, or undefined when no such row exists. */
  async get(q: Queryable, id: string): Promise<IntegrationModel | undefined> {
    // As text: a JS Date keeps milliseconds only, and two replacements within one millisecond must still differ.
    const { rows } = await q.query<{ stamp: string }>('SELECT updated_at::text AS stamp FROM integration_models WHERE id = $1', [id]);
    const row = rows[0];
    if (!row) {
      this.#entries.delete(id);
      return undefined;
    }
    return this.at(q, id, row.stamp);
  }

  /**
   * The model as of `stamp` (its row's `updated_at::text`, read by the caller along with other columns, which saves
   * a round trip): the cached one when the stamp matches, else loaded now.
   */
  at(q: Queryable, id: string, stamp: string): Promise<IntegrationModel> {
    const hit = this.#entries.get(id);
    if (hit && hit.stamp === stamp) return hit.model;
    const model = (async () => {
      const { rows: docs } = await q.query<{ document: Record<string, unknown> }>('SELECT document FROM integration_models WHERE id = $1', [id]);
      // Deleted since the caller read its stamp.
      if (!docs[0]) throw notFound(`integration model '${id}' does not exist`);
      return loadIntegrationModel(docs[0].document);
    })();
    const entry = { stamp, model };
    this.#entries.set(id, entry);
    model.catch(() => {
      if (this.#entries.get(id) === entry) this.#entries.delete(id);
    });
    return model;
  }
}

/**
 * Loads every `*.yaml`, `*.yml` and `*.json` file of `dir` (default `openapi/integrations/`) into the table at
 * start-up. A file that is not a valid model is logged and skipped: one vendor document must not keep the service
 * from starting. Dropped operations are logged as warnings.
 */
export async function loadIntegrationModelFiles(db: Database, logger: Logger, dir: string): Promise<{ loaded: string[]; failed: string[] }> {
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => /\.(ya?ml|json)$/i.test(f)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { loaded: [], failed: [] };
    throw e;
  }
  const loaded: string[] = [];
  const failed: string[] = [];
  // Files loaded before, by the hash of their text: those still the same are not parsed and validated again.
  const { rows: known } = await db.query<{ id: string; sha: string }>(
    `SELECT id, source_sha256 AS sha FROM integration_models WHERE source = 'file' AND source_sha256 IS NOT NULL`,
  );
  const idBySha = new Map(known.map((r) => [r.sha, r.id]));
  for (const file of files) {
    const path = join(dir, file);
    const text = await readFile(path, 'utf8');
    const sha = createHash('sha256').update(text).digest('hex');
    const unchangedId = idBySha.get(sha);
    if (unchangedId !== undefined) {
      loaded.push(unchangedId);
      logger.debug('integration model file unchanged since it was loaded', { file: path, model: unchangedId });
      continue;
    }
    let model: IntegrationModel;
    try {
      model = await loadIntegrationModel(text, { sourceName: path });
    } catch (e) {
      failed.push(file);
      logger.error('integration model file is not valid; skipped', {
        file: path,
        error: e instanceof Error ? e.message : String(e),
        ...(e instanceof IntegrationModelError ? { issues: e.issues.slice(0, 20) } : {}),
      });
      continue;
    }
    const outcome = await db.transaction((tx) => upsertIntegrationModel(tx, model, `system:model-file:${file}`, sha));
    loaded.push(model.id);
    logger.info('integration model loaded', { file: path, model: model.id, outcome, operations: model.operations.length });
    for (const d of model.dropped) {
      logger.warn('integration model operation dropped', { model: model.id, method: d.method, path: d.path, operationId: d.operationId, reason: d.reason });
    }
  }
  return { loaded, failed };
}
