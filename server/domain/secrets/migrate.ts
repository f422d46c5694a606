/**
 * The migration of stored secrets to an external backend (`POST /admin/secrets/migrate`): every secret held in the
 * database as a value is pushed to the backend `secret_backend.migrate_to` names, read back through the resolver, and
 * replaced by the reference that names it, so the database keeps references only. The seed's "Migrate plaintext
 * secrets to backend", with its dry-run preview and per-row report.
 *
 * What it walks:
 *  - settings marked writeOnly, in every section the settings API serves, except `secret_backend` itself (the
 *    backend's own credentials cannot be fetched from the backend they open, and the settings room refuses
 *    references there);
 *  - integration secrets (integrations.secrets, by RFC 6901 pointer), except the OAuth token set (`access_token`,
 *    `refresh_token`, `expires_at`): the service obtains and refreshes those itself and stores each new set as it
 *    comes, so a reference there would be overwritten at the next refresh, and a token lives minutes, not a secret
 *    an operator keeps in a vault; and except the dynamic key request's `body`/`headers`, which are JSON objects a
 *    reference (a string) cannot stand for;
 *  - asset types' own Teams webhook URLs.
 * The internal `security` section (the admin key's hash) is not a credential we present anywhere and stays.
 *
 * Each row is its own unit: the value is written to the backend under a deterministic name
 * (`provisio/settings/<section>/<key>`, `provisio/integrations/<integration>/<pointer>`,
 * `provisio/teams-webhooks/<asset type id>`), so a rerun or a retry after a failure writes the same secret again
 * rather than a new one; then read back through the resolver and compared; then, in a transaction that locks the
 * row and checks the value was not changed meanwhile, the stored value is replaced by the reference, sealed like
 * any secret. A row that fails is reported and left as it was. One audit row records the run with its report.
 * No report, message or audit row ever carries a value.
 */
import {
  SECRET_SCHEMES,
  SecretBackendError,
  clearSecretCache,
  conflict,
  createSecretBackends,
  looksLikeSecretReference,
  openSecret,
  resolveSecretReference,
  sealSecret,
  secretPlace,
  writeAudit,
  type Actor,
  type Database,
  type Logger,
  type Queryable,
  type SecretBackend,
  type SecretScheme,
} from '../../../adapter';
import type { SecretMigrationReport, SecretMigrationRow } from '../../api/gen/types.gen';
import { SETTINGS_SECTIONS, readSettings, type SettingsSectionDef } from '../settings/settings';

export type MigrationRow = SecretMigrationRow;
export type MigrationReport = SecretMigrationReport;
type MigrationKind = MigrationRow['kind'];
type MigrationAction = MigrationRow['action'];
/** A backend the migration can write to: every scheme but ccp. */
type WritableScheme = MigrationReport['target'];

/** Integration secrets the migration leaves where they are (see the module comment for why). */
const NOT_MIGRATED_POINTERS = new Set([
  '/authentication/access_token',
  '/authentication/refresh_token',
  '/authentication/expires_at',
  '/authentication/dynamic/body',
  '/authentication/dynamic/headers',
]);

/** Sections whose secrets stay in the database. */
const SECTIONS_KEPT = new Set(['secret_backend']);

/** One stored secret the migration may move: where it is, how to re-read and replace it under a lock. */
interface Candidate {
  kind: MigrationKind;
  name: string;
  /** The name written to the backend. */
  backendName: string;
  place: string;
  /** The stored (sealed) value, the row locked (FOR UPDATE) when `lock`; undefined when the row is gone. */
  read(q: Queryable, lock: boolean): Promise<unknown>;
  replace(tx: Queryable, sealed: unknown, actor: Actor): Promise<void>;
}

// Backend names keep to what every backend accepts in a path segment (AWS: letters, digits and /_+=.@-; the others
// map further themselves): anything else becomes '-'.
const segment = (s: string): string => s.replace(/[^A-Za-z0-9_.@+=-]/g, '-');

async function listCandidates(q: Queryable): Promise<Candidate[]> {
  const out: Candidate[] = [];
  const secretKeys = new Set<string>();
  for (const [section, def] of Object.entries(SETTINGS_SECTIONS) as [string, SettingsSectionDef][]) {
    if (SECTIONS_KEPT.has(section)) continue;
    for (const [key, schema] of Object.entries(def.schema.properties)) if (schema.writeOnly === true) secretKeys.add(`${section}.${key}`);
  }
  const settings = await q.query<{ key: string; section: string }>(`SELECT key, section FROM app_config WHERE is_secret ORDER BY key`);
  for (const r of settings.rows) {
    if (!secretKeys.has(r.key)) continue;
    const name = r.key.slice(r.section.length + 1);
    out.push({
      kind: 'setting',
      name: r.key,
      backendName: `provisio/settings/${segment(r.section)}/${segment(name)}`,
      place: secretPlace.setting(r.key),
      read: async (q, lock) => (await q.query<{ value: unknown }>(`SELECT value FROM app_config WHERE key = $1${lock ? ' FOR UPDATE' : ''}`, [r.key])).rows[0]?.value,
      replace: async (tx, sealed, actor) => {
        await tx.query(`UPDATE app_config SET value = $2::jsonb, updated_at = now(), updated_by = $3 WHERE key = $1`, [r.key, JSON.stringify(sealed), actor.triggeredBy]);
      },
    });
  }

  const integrations = await q.query<{ id: number; name: string; secrets: Record<string, unknown> | null }>(
    `SELECT id::int AS id, name, secrets FROM integrations ORDER BY name`,
  );
  for (const r of integrations.rows) {
    for (const pointer of Object.keys(r.secrets ?? {}).sort()) {
      if (NOT_MIGRATED_POINTERS.has(pointer)) continue;
      out.push({
        kind: 'integration',
        name: `integration:${r.name}:${pointer}`,
        backendName: `provisio/integrations/${segment(r.name)}/${pointer.split('/').slice(1).map(segment).join('/')}`,
        place: secretPlace.integration(r.id, pointer),
        read: async (q, lock) => {
          const row = (await q.query<{ secrets: Record<string, unknown> | null }>(`SELECT secrets FROM integrations WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [r.id])).rows[0];
          return row?.secrets?.[pointer];
        },
        // The reference names the same value: a client built from the old form holds the same secret, so the
        // configuration revision stays (the runtime checks referenced values itself at each call).
        replace: async (tx, sealed) => {
          await tx.query(`UPDATE integrations SET secrets = jsonb_set(secrets, ARRAY[$2::text], $3::jsonb) WHERE id = $1`, [r.id, pointer, JSON.stringify(sealed)]);
        },
      });
    }
  }

  const teams = await q.query<{ asset_type_id: number }>(`SELECT asset_type_id::int AS asset_type_id FROM asset_type_teams_webhooks ORDER BY asset_type_id`);
  for (const r of teams.rows) {
    out.push({
      kind: 'teams_webhook',
      name: `teams_webhook:${r.asset_type_id}`,
      backendName: `provisio/teams-webhooks/${r.asset_type_id}`,
      place: secretPlace.teamsWebhook(r.asset_type_id),
      read: async (q, lock) =>
        (await q.query<{ webhook_url: unknown }>(`SELECT webhook_url FROM asset_type_teams_webhooks WHERE asset_type_id = $1${lock ? ' FOR UPDATE' : ''}`, [r.asset_type_id]))
          .rows[0]?.webhook_url,
      replace: async (tx, sealed, actor) => {
        await tx.query(`UPDATE asset_type_teams_webhooks SET webhook_url = $2, updated_at = now(), updated_by = $3 WHERE asset_type_id = $1`, [
          r.asset_type_id,
          sealed,
          actor.triggeredBy,
        ]);
      },
    });
  }
  return out;
}

/**
 * The backend `secret_backend.migrate_to` names, with the section's settings.
 * @throws CodedError CONFLICT (`secret_backend_code` SECRET_BACKEND_NOT_CONFIGURED) when no target is set;
 *   SecretBackendError SECRET_BACKEND_READ_ONLY (409) when the target cannot be written (CyberArk CCP).
 */
async function targetOf(db: Database, logger: Logger | undefined): Promise<{ scheme: WritableScheme; backend: SecretBackend & { close?(): void }; settings: Record<string, unknown> }> {
  const settings = await readSettings(db, 'secret_backend');
  const target = settings['migrate_to'];
  if (typeof target !== 'string' || !(SECRET_SCHEMES as readonly string[]).includes(target)) {
    throw conflict(`no migration target: set secret_backend.migrate_to to one of ${SECRET_SCHEMES.join(', ')} (with that backend's settings) first`, {
      secret_backend_code: 'SECRET_BACKEND_NOT_CONFIGURED',
    });
  }
  const scheme = target as SecretScheme;
  const backends = createSecretBackends(logger ? { logger } : {});
  const backend = backends.get(scheme)!;
  for (const [s, b] of backends) if (s !== scheme) b.close?.();
  if (!backend.write) {
    backend.close?.();
    throw new SecretBackendError(
      'SECRET_BACKEND_READ_ONLY',
      `secret_backend.migrate_to is ${scheme}: CyberArk CCP only hands out credentials and cannot store them; migrate to vault, azurekv, awssm or conjur instead (ccp:// references can still be set by hand)`,
    );
  }
  return { scheme: scheme as WritableScheme, backend, settings };
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Runs the migration (see the module comment). `dryRun` reads and reports only: nothing is written anywhere, no
 * audit row. A row whose backend write, read-back or replacement fails is `failed` with the reason; the others go on.
 * @throws as {@link targetOf} before anything is done.
 */
export async function migrateSecrets(
  db: Database,
  opts: { dryRun: boolean; actor: Actor; logger?: Logger | undefined },
): Promise<MigrationReport> {
  const { scheme, backend, settings } = await targetOf(db, opts.logger);
  const rows: MigrationRow[] = [];
  try {
    // A value cached from before (a previous run's read-back of a name written again) must not pass the check.
    if (!opts.dryRun) clearSecretCache();
    for (const c of await listCandidates(db)) rows.push(await migrateOne(db, c, { scheme, backend, settings, dryRun: opts.dryRun, actor: opts.actor }));
  } finally {
    backend.close?.();
  }
  const totals: Record<MigrationAction, number> = { migrated: 0, would_migrate: 0, already_reference: 0, failed: 0 };
  for (const r of rows) totals[r.action] += 1;
  const report: MigrationReport = { dry_run: opts.dryRun, target: scheme, rows, totals };
  if (!opts.dryRun) {
    await db.transaction((tx) =>
      writeAudit(tx, {
        entity: 'secrets',
        entityId: 'migration',
        action: 'migrate',
        before: null,
        after: { target: scheme, totals, rows },
        triggeredBy: opts.actor.triggeredBy,
        requestId: opts.actor.requestId,
      }),
    );
  }
  return report;
}

async function migrateOne(
  db: Database,
  c: Candidate,
  run: { scheme: WritableScheme; backend: SecretBackend; settings: Record<string, unknown>; dryRun: boolean; actor: Actor },
): Promise<MigrationRow> {
  const row = { kind: c.kind, name: c.name };
  const failed = (error: string): MigrationRow => ({ ...row, action: 'failed', error });
  let value: unknown;
  try {
    value = await openSecret(db, await c.read(db, false), c.place);
  } catch (e) {
    return failed(`the stored value could not be opened: ${messageOf(e)}`);
  }
  if (looksLikeSecretReference(value)) return { ...row, action: 'already_reference', reference: value };
  if (typeof value !== 'string' || value === '') return failed('the stored value is not a non-empty string, so a reference cannot stand for it');
  if (run.dryRun) return { ...row, action: 'would_migrate' };

  let reference: string;
  try {
    reference = (await run.backend.write!(c.backendName, value, run.settings)).raw;
  } catch (e) {
    return failed(`writing ${run.scheme} secret ${c.backendName} failed: ${messageOf(e)}`);
  }
  try {
    if ((await resolveSecretReference(db, reference)) !== value) return failed(`${reference} read back a different value than was written; the row was left as it was`);
  } catch (e) {
    return failed(`reading ${reference} back failed: ${messageOf(e)}`);
  }
  try {
    const outcome = await db.transaction(async (tx) => {
      const stored = await c.read(tx, true);
      if (stored === undefined) return 'gone' as const;
      if ((await openSecret(tx, stored, c.place)) !== value) return 'changed' as const;
      await c.replace(tx, await sealSecret(tx, reference, c.place), run.actor);
      return 'replaced' as const;
    });
    if (outcome === 'gone') return failed(`the row was deleted during the migration (${reference} was written and is not used)`);
    if (outcome === 'changed') return failed(`the value was changed during the migration; run the migration again (${reference} holds the old value)`);
  } catch (e) {
    return failed(`replacing the stored value with ${reference} failed: ${messageOf(e)}`);
  }
  return { ...row, action: 'migrated', reference };
}
