import { X509Certificate } from 'node:crypto';
import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { onFirstUse, type Queryable, type Transaction } from '../../../adapter';
import { scopesNotHeld, type Scope } from '../../auth/principal';
import { forbidden, notFound, validationFailed, type FieldError } from '../../errors';
import {
  clearSecretCache,
  looksLikeSecretReference,
  openSecret,
  parseSecretReference,
  resolveSecretValue,
  sealSecret,
  secretPlace,
  teamsWebhookUrlProblem,
  writeAudit,
} from '../../../adapter';
import { SECRET_BACKEND_SECTION } from './secret-backend-settings';
import { checkWebhookConnection, WEBHOOK_CONNECTION_KEYS } from './webhook-connection';

/**
 * Runtime settings: one section per integration, stored in `app_config` as one row per key
 * (`<section>.<name>`, JSON value). Each known section has a JSON Schema; a property marked
 * `writeOnly: true` is a secret: stored with `is_secret`, never read back, never audited by value.
 */
export interface SettingsSectionDef {
  description: string;
  schema: {
    type: 'object';
    additionalProperties: false;
    properties: Record<string, Record<string, unknown> & { writeOnly?: boolean }>;
  };
  /** Rules across keys, checked on the section as it would be after the change; each error names a key. */
  check?: (merged: Record<string, unknown>) => FieldError[];
  /**
   * Keys whose value authenticates inbound requests, each with the scopes a request so authenticated acts with.
   * Whoever chooses such a value can act with those scopes, so writing the key (setting, changing or clearing it)
   * needs every one of them: the mint guard's rule, nobody grants what they do not hold. Outbound signing
   * secrets and passwords we present to other systems authenticate us, not our callers, and are not listed.
   */
  credentials?: Readonly<Record<string, readonly Scope[]>>;
}

/**
 * The smtp section's `ca_cert_pem` must be certificates Node can read: the schema only sees a PEM header, and a CA
 * that does not parse would fail every mail at the TLS stage. (A username without its password is left to the send,
 * which answers SMTP_NOT_CONFIGURED naming it: an admin may clear a password before setting the new one.)
 */
function checkSmtpSettings(merged: Record<string, unknown>): FieldError[] {
  const pem = merged['ca_cert_pem'];
  if (typeof pem !== 'string') return [];
  try {
    for (const block of pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [pem]) new X509Certificate(block);
    return [];
  } catch {
    return [{ path: '/body/ca_cert_pem', message: 'is not a PEM certificate (or bundle) that can be read' }];
  }
}

const hostname = { type: 'string', minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$' };
const port = { type: 'integer', minimum: 1, maximum: 65535 };
// An LDAP attribute description (RFC 4512 descr): letters, digits and hyphens, starting with a letter.
const ldapAttribute = { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9-]{0,63}$' };
// A Graph user property, or one level into an object property (employeeOrgData.costCenter, onPremisesExtensionAttributes.extensionAttribute1).
const graphProperty = { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_]{0,119}(\\.[A-Za-z][A-Za-z0-9_]{0,119})?$' };

/** How long SCIM request log entries are kept while `scim.request_log_retention_days` is unset. */
export const SCIM_LOG_RETENTION_DEFAULT_DAYS = 30;

/** The sections `GET/PUT /admin/settings/{section}` accept. */
export const SETTINGS_SECTIONS = {
  servicenow: {
    description: 'ServiceNow webhook: the shared HMAC secret for X-Hub-Signature-256 (WEBHOOK_SECRET_TOKEN wins when set).',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        webhook_secret: { type: 'string', minLength: 16, maxLength: 1024, writeOnly: true, description: 'HMAC-SHA256 key, at least 16 characters.' },
      },
    },
    // A valid X-Hub-Signature-256 is granted the required scopes of the operation it signs, and every operation
    // accepting `hubSignature` (receiveServiceNowOrder, receiveHrLeaver) takes this key when the env sets none.
    credentials: { webhook_secret: ['webhook:in', 'hr:leaver'] },
  },
  api_tokens: {
    description: 'API token retention.',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        purge_after_days: {
          type: 'integer',
          minimum: 0,
          maximum: 36500,
          description: 'Days after revocation or expiry before the daily purge hard-deletes a token; 0 keeps them forever.',
        },
      },
    },
  },
  active_directory: {
    description: 'Active Directory / LDAP: user validation, manager lookup, group membership, requester attributes.',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        server: { ...hostname, description: 'LDAP server hostname or IP.' },
        port: { ...port, description: '389 (LDAP) or 636 (LDAPS).' },
        bind_dn: { type: 'string', minLength: 1, maxLength: 1024, description: 'Service account DN.' },
        bind_password: { type: 'string', minLength: 1, maxLength: 1024, writeOnly: true, description: 'Service account password.' },
        base_dn: { type: 'string', minLength: 1, maxLength: 1024, description: 'Search root for user and group lookups.' },
        auth_type: { type: 'string', enum: ['simple', 'ntlm', 'kerberos'], description: 'Bind mechanism: simple bind, NTLM (GSS-SPNEGO; bind_dn as DOMAIN\\user or a UPN) or Kerberos (GSSAPI).' },
        kerberos_principal: { type: 'string', minLength: 3, maxLength: 512, pattern: '^[^\\s@/]+(/[^\\s@]+)?@[A-Za-z0-9.-]+$', description: 'Kerberos: the service account principal, e.g. svc-provisio@CORP.EXAMPLE.' },
        kerberos_keytab: { type: 'string', minLength: 8, maxLength: 65536, writeOnly: true, description: "Kerberos: the principal's keytab, base64; without it bind_password is the principal's password." },
        kerberos_spn_host: { ...hostname, description: 'Kerberos: host name in the SPN ldap/<host>; default server (set it when server is an IP address).' },
        krb5_conf_path: { type: 'string', minLength: 2, maxLength: 1024, pattern: '^/', description: "Kerberos: krb5.conf path; default the process's KRB5_CONFIG or /etc/krb5.conf." },
        sasl_protection: { type: 'string', enum: ['seal', 'sign', 'none'], description: 'NTLM/Kerberos: SASL security layer; default seal on plain LDAP, none over LDAPS/StartTLS (where servers refuse sign/seal).' },
        use_tls: { type: 'boolean', description: 'LDAPS (TLS from the first byte).' },
        start_tls: { type: 'boolean', description: 'Upgrade a plain connection with StartTLS.' },
        // Domain controllers usually carry certificates of an internal CA that Node's trust store does not know.
        ca_cert_pem: {
          type: 'string',
          minLength: 1,
          maxLength: 65536,
          pattern: '-----BEGIN CERTIFICATE-----',
          description: 'PEM of the CA(s) that issued the domain controller certificate (LDAPS and StartTLS); default: the system trust store.',
        },
        department_attribute: { ...ldapAttribute, description: 'Attribute holding the department, e.g. department.' },
        cost_center_attribute: { ...ldapAttribute, description: 'Attribute holding the cost center, e.g. extensionAttribute1.' },
        company_attribute: { ...ldapAttribute, description: 'Attribute holding the company, e.g. company.' },
        employee_id_attribute: { ...ldapAttribute, description: 'Attribute holding the employee id, e.g. employeeID.' },
        title_attribute: { ...ldapAttribute, description: 'Attribute holding the job title, e.g. title.' },
      },
    },
    // LDAPS already encrypts from the first byte; StartTLS on top of it is a misconfiguration, not a choice.
    check: (merged) =>
      merged['use_tls'] === true && merged['start_tls'] === true
        ? [{ path: '/body/start_tls', message: 'cannot be true together with use_tls (LDAPS already uses TLS)' }]
        : [],
  },
  smtp: {
    description: 'Outbound email (TLS only).',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { ...hostname, description: 'SMTP server.' },
        port: { ...port, description: 'Usually 587 (STARTTLS) or 465 (TLS).' },
        username: { type: 'string', minLength: 1, maxLength: 320 },
        password: { type: 'string', minLength: 1, maxLength: 1024, writeOnly: true },
        from_address: { type: 'string', format: 'email', description: 'Sender address shown in emails.' },
        tls_mode: { type: 'string', enum: ['starttls', 'tls'], description: 'STARTTLS or TLS from the first byte.' },
        reply_to: { type: 'string', format: 'email', description: 'Optional reply-to address for approval emails.' },
        // A display name reaches the From header: no control characters (header injection).
        from_name: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f\\u007f]+$', description: 'Sender display name, e.g. provisio.' },
        // Mail relays inside a company often carry certificates of an internal CA that Node's trust store does not know.
        ca_cert_pem: {
          type: 'string',
          minLength: 1,
          maxLength: 65536,
          pattern: '-----BEGIN CERTIFICATE-----',
          description: 'PEM of the CA(s) that issued the SMTP server certificate; default: the system trust store. Certificates are always verified.',
        },
      },
    },
    check: checkSmtpSettings,
  },
  scim: {
    description: 'SCIM 2.0 edge: how long the request log (GET /admin/scim/logs) is kept.',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        request_log_retention_days: {
          type: 'integer',
          minimum: 0,
          maximum: 36500,
          description: `Days the daily purge keeps SCIM request log entries; 0 keeps them forever. Unset: ${SCIM_LOG_RETENTION_DEFAULT_DAYS} days.`,
        },
      },
    },
  },
  webhooks: {
    description:
      'Outbound provisioning webhooks: signing secrets (a webhook task names one as `secretRef: webhooks.<key>` and ' +
      'its payloads are HMAC-signed with it), and how deliveries reach receivers (proxy, TLS, client certificate, ' +
      'logging; as an integration\'s configuration), read at each delivery.',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        saas_seat_secret: {
          type: 'string',
          minLength: 16,
          maxLength: 1024,
          writeOnly: true,
          description: 'Signs the SaaS seat sample runbooks\' provisioning webhooks (workflows/definitions/saas-seat-*.json).',
        },
        stub_mode: {
          type: 'boolean',
          description:
            'Stub mode for deliveries (like an integration\'s): each payload is still built, checked and signed, then answered ' +
            'as provisioned ({"response":"PROVISIONED_USER","stub":true}) without any request. For demos (DEMO=1 sets it) and rehearsals.',
        },
        ...WEBHOOK_CONNECTION_KEYS,
      },
    },
    check: checkWebhookConnection,
  },
  hr: {
    description:
      'HR leaver webhook: the clientState of the Microsoft Graph subscription (POST /hr/leaver/graph cannot be signed; ' +
      'this shared value is how a notification proves it comes from our subscription). Signed deliveries use WEBHOOK_SECRET_TOKEN.',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        graph_client_state: {
          type: 'string',
          minLength: 16,
          maxLength: 128,
          writeOnly: true,
          description: 'The clientState given when creating the Graph subscription (Graph allows at most 128 characters); generated and stored by the service when unset while the subscription is configured.',
        },
      },
    },
    // Knowing the clientState is all POST /hr/leaver/graph asks before it runs the leaver flow.
    credentials: { graph_client_state: ['hr:leaver'] },
  },
  entra_id: {
    description:
      'Microsoft Entra ID over Microsoft Graph (an app registration with client credentials): the directory for cloud-only ' +
      'tenants when use_as_directory is true (instead of active_directory), and the Graph subscription on users that feeds ' +
      'the leaver webhook (POST /hr/leaver/graph) when subscription_notification_url is set.',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        use_as_directory: { type: 'boolean', description: 'Entra ID answers the directory questions (requester, manager, groups, runbook directory tasks) instead of active_directory.' },
        tenant_id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9.-]+$', description: 'Directory (tenant) id or verified domain.' },
        client_id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9-]+$', description: 'Application (client) id of the app registration.' },
        client_secret: { type: 'string', minLength: 1, maxLength: 1024, writeOnly: true, description: 'Client secret of the app registration.' },
        authority_host: { type: 'string', format: 'uri', pattern: '^https://', maxLength: 1024, description: 'Unset: https://login.microsoftonline.com (another for national clouds).' },
        graph_base_url: { type: 'string', format: 'uri', pattern: '^https://', maxLength: 1024, description: 'Unset: https://graph.microsoft.com/v1.0.' },
        ca_cert_pem: {
          type: 'string',
          minLength: 1,
          maxLength: 65536,
          pattern: '-----BEGIN CERTIFICATE-----',
          description: 'PEM of the CA(s) to trust for the authority and Graph (a TLS-inspecting proxy); default: the system trust store.',
        },
        department_property: { ...graphProperty, description: 'Graph user property of the department. Unset: department.' },
        cost_center_property: { ...graphProperty, description: 'Graph user property of the cost center, e.g. employeeOrgData.costCenter (the default) or an extension attribute.' },
        company_property: { ...graphProperty, description: 'Unset: companyName.' },
        employee_id_property: { ...graphProperty, description: 'Unset: employeeId.' },
        title_property: { ...graphProperty, description: 'Unset: jobTitle.' },
        subscription_notification_url: {
          type: 'string',
          format: 'uri',
          // Graph itself accepts https only; http is left for a loopback rehearsal against a test Graph.
          pattern: '^https?://',
          maxLength: 2048,
          description: 'The public URL of POST /hr/leaver/graph: set, the service keeps a Graph subscription on users alive (clientState: hr.graph_client_state). Graph accepts https only.',
        },
      },
    },
  },
  approvals: {
    description:
      'Approvals that reach people: how long a mailed one-click link stays valid, and when a pending approval is ' +
      'reminded, escalated to the approver\'s manager (or the fallback approver), and expired (order cancelled).',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        link_ttl_days: { type: 'integer', minimum: 1, maximum: 90, description: 'Days a mailed Approve/Decline link stays valid. Unset: 7.' },
        remind_after_hours: { type: 'integer', minimum: 1, maximum: 8760, description: 'Hours after routing before the approver is reminded. Unset: 24.' },
        escalate_after_hours: {
          type: 'integer',
          minimum: 1,
          maximum: 8760,
          description: 'Hours after the reminder before the approval is escalated to the approver\'s manager, else the fallback approver. Unset: 24.',
        },
        expire_after_hours: {
          type: 'integer',
          minimum: 1,
          maximum: 8760,
          description: 'Hours after the escalation before a still-pending approval expires: the order is cancelled and its requester told. Unset: 72.',
        },
      },
    },
  },
  alerts: {
    description: 'Operational alerts by mail: who is told when an integration\'s health check finds it degraded or offline.',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        recipients: {
          type: 'array',
          minItems: 1,
          maxItems: 50,
          uniqueItems: true,
          items: { type: 'string', format: 'email', maxLength: 320 },
          description: 'Addresses mailed each integration health alert. Unset: no alert mails.',
        },
      },
    },
  },
  teams: {
    description:
      'Microsoft Teams: the incoming webhook that approval requests are posted to as Adaptive Cards (an asset type\'s own ' +
      '`teams_webhook_url` wins for its requests). Cards go out over the `webhooks` section\'s connection (proxy, TLS/CA, logging).',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        webhook_url: {
          type: 'string',
          minLength: 9,
          maxLength: 2048,
          pattern: '^https://',
          writeOnly: true,
          description: 'The channel\'s incoming-webhook (or workflow) URL, https only. Write-only: the URL is the credential that posts to the channel.',
        },
      },
    },
    // The pattern only sees the scheme; this names a URL that does not parse, has no host or carries credentials.
    check: (merged) => {
      const problem = merged['webhook_url'] === undefined ? undefined : teamsWebhookUrlProblem(merged['webhook_url']);
      return problem === undefined ? [] : [{ path: '/body/webhook_url', message: problem }];
    },
  },
  secret_backend: SECRET_BACKEND_SECTION,
} as const satisfies Record<string, SettingsSectionDef>;

export type SettingsSectionName = keyof typeof SETTINGS_SECTIONS;

export interface SettingsSectionView {
  section: string;
  values: Record<string, unknown>;
  secrets: Record<string, { configured: boolean }>;
  updated_at: string | null;
  updated_by: string | null;
}

interface ConfigRow {
  key: string;
  value: unknown;
  is_secret: boolean;
  updated_at: Date;
  updated_by: string;
}

// One validator per key, compiled once (on the first write, not at every start), so a 422 names the key at fault.
const keyValidators = onFirstUse(() => {
  const ajv = new Ajv({ allErrors: true, strict: true });
  addFormats(ajv);
  const validators = new Map<string, ValidateFunction>();
  for (const [section, def] of Object.entries(SETTINGS_SECTIONS) as [string, SettingsSectionDef][]) {
    for (const [name, schema] of Object.entries(def.schema.properties)) validators.set(`${section}.${name}`, ajv.compile(schema));
  }
  return validators;
});

function sectionDef(section: string): SettingsSectionDef {
  if (!Object.hasOwn(SETTINGS_SECTIONS, section)) {
    throw notFound(`unknown settings section '${section}' (known: ${Object.keys(SETTINGS_SECTIONS).join(', ')})`);
  }
  return SETTINGS_SECTIONS[section as SettingsSectionName];
}

const secretKeysOf = (def: SettingsSectionDef): string[] =>
  Object.entries(def.schema.properties).filter(([, s]) => s.writeOnly === true).map(([k]) => k);

/** Every known section with its schema, secret keys and credential keys (for `GET /admin/settings`). */
export function listSettingsSections(): {
  section: string;
  description: string;
  secret_keys: string[];
  credential_scopes: Record<string, Scope[]>;
  schema: Record<string, unknown>;
}[] {
  return (Object.entries(SETTINGS_SECTIONS) as [string, SettingsSectionDef][]).map(([section, def]) => ({
    section,
    description: def.description,
    secret_keys: secretKeysOf(def),
    credential_scopes: Object.fromEntries(Object.entries(def.credentials ?? {}).map(([name, scopes]) => [name, [...scopes]])),
    schema: def.schema as unknown as Record<string, unknown>,
  }));
}

/**
 * Refuses a change that touches a credential key (see {@link SettingsSectionDef.credentials}) unless `held`
 * grants every scope that credential grants.
 * @throws FORBIDDEN naming the keys, with the scopes lacking in `missing_scopes`.
 */
function checkCredentialWrites(section: string, def: SettingsSectionDef, names: string[], held: readonly Scope[]): void {
  const credentials = def.credentials ?? {};
  const touched = names.filter((name) => Object.hasOwn(credentials, name));
  const needed = [...new Set(touched.flatMap((name) => credentials[name] ?? []))];
  const missing = scopesNotHeld(held, needed);
  if (missing.length === 0) return;
  const keys = touched.map((name) => `${section}.${name}`).join(', ');
  throw forbidden(
    `${keys} authenticates requests that act with ${needed.join(', ')}: writing it needs every one of those scopes, ` +
      `and the caller lacks ${missing.join(', ')}`,
    { missing_scopes: missing },
  );
}

async function readRows(q: Queryable, section: string): Promise<ConfigRow[]> {
  const { rows } = await q.query<ConfigRow>(
    `SELECT key, value, is_secret, updated_at, updated_by FROM app_config WHERE section = $1 ORDER BY key`,
    [section],
  );
  return rows;
}

function viewOf(section: string, def: SettingsSectionDef, rows: ConfigRow[]): SettingsSectionView {
  const secretNames = new Set(secretKeysOf(def));
  const values: Record<string, unknown> = {};
  const secrets: Record<string, { configured: boolean }> = {};
  for (const name of secretNames) secrets[name] = { configured: false };
  let latest: ConfigRow | undefined;
  for (const row of rows) {
    const name = row.key.slice(section.length + 1);
    if (row.is_secret || secretNames.has(name)) secrets[name] = { configured: true };
    else values[name] = row.value;
    if (!latest || row.updated_at.getTime() > latest.updated_at.getTime()) latest = row;
  }
  return {
    section,
    values,
    secrets,
    updated_at: latest ? latest.updated_at.toISOString() : null,
    updated_by: latest ? latest.updated_by : null,
  };
}

/** One section as a reader may see it: secrets only as `{configured}`. Throws NOT_FOUND for an unknown section. */
/**
 * In-process news of committed settings changes, for what keeps something opened from them (the directory
 * connection): told after the write commits, so whoever reads the settings then sees the new values. Other processes
 * do not hear it; they re-read on their own schedule.
 */
type SettingsListener = (section: string) => void;
const settingsListeners = new Set<SettingsListener>();
export function onSettingsChanged(listener: SettingsListener): () => void {
  settingsListeners.add(listener);
  return () => settingsListeners.delete(listener);
}
/** Call after the transaction that changed `section` committed. */
export function announceSettingsChanged(section: string): void {
  for (const l of settingsListeners) l(section);
}

/**
 * Why a writeOnly value that starts like a reference (`vault://…`) cannot be stored; undefined when it is a valid
 * reference. The `secret_backend` section's own secrets can never be one: they are what reaches the backends.
 */
function referenceProblem(section: string, value: string): string | undefined {
  if (section === 'secret_backend') return "cannot be a secret reference: a backend's credentials cannot come from a backend";
  const parsed = parseSecretReference(value);
  return parsed.ok ? undefined : `is not a valid secret reference: ${parsed.message}`;
}

// Changed backend settings (another vault, other credentials) apply at the next read, not after the cache's TTL.
onSettingsChanged((section) => {
  if (section === 'secret_backend') clearSecretCache();
});

export async function getSettings(q: Queryable, section: string): Promise<SettingsSectionView> {
  const def = sectionDef(section);
  return viewOf(section, def, await readRows(q, section));
}

/** Sections the service keeps for itself and never serves through the settings API: the admin key's hash. */
export type InternalSectionName = 'security';
export type StoredSectionName = SettingsSectionName | InternalSectionName;

/**
 * The stored values of a section by name, secrets included: for the service's own use, never for an API answer.
 * Every setting the service acts on is read through this function (and `readSetting`, one key of it), so a rotated
 * secret or a changed value takes effect at the next read, whichever process wrote it.
 */
export async function readSettings(q: Queryable, section: StoredSectionName): Promise<Record<string, unknown>> {
  const rows = await readRows(q, section);
  const out: Record<string, unknown> = {};
  for (const r of rows) {
    const name = r.key.slice(section.length + 1);
    // Secrets are stored sealed (adapter/secrets) and opened here, for the caller that uses them; one may be a
    // reference to an external backend (vault://…), and the caller then gets the value it names.
    out[name] = r.is_secret ? await resolveSecretValue(q, await openSecret(q, r.value, secretPlace.setting(r.key))) : r.value;
  }
  return out;
}

/** The stored value of one key of a section (see `readSettings`); undefined when it is not set. */
export async function readSetting(q: Queryable, section: StoredSectionName, name: string): Promise<unknown> {
  return (await readSettings(q, section))[name];
}

/**
 * Stores a value the service keeps for itself unless the key is set already (the first process to start wins a
 * race between several); true when this call stored it.
 */
export async function storeSettingOnce(
  q: Queryable,
  section: InternalSectionName,
  name: string,
  value: unknown,
  opts: { secret: boolean; updatedBy: string },
): Promise<boolean> {
  const inserted = await q.query(
    `INSERT INTO app_config (key, section, value, is_secret, updated_by) VALUES ($1, $2, $3::jsonb, $4, $5)
     ON CONFLICT (key) DO NOTHING`,
    [`${section}.${name}`, section, JSON.stringify(opts.secret ? await sealSecret(q, value, secretPlace.setting(`${section}.${name}`)) : value), opts.secret, opts.updatedBy],
  );
  return inserted.rowCount !== 0;
}

/**
 * Merges `patch` into a section: each key is validated against the section's schema, `null` deletes it.
 * Audits the change (secret keys only as "set"/"deleted", never their values) in the same transaction.
 * `actor.scopes` are the caller's; the service's own writes (no API caller) omit them and hold every scope.
 * Throws NOT_FOUND for an unknown section; FORBIDDEN (before any validation) when the patch touches a credential
 * key whose scopes the caller does not all hold; VALIDATION_FAILED naming every unknown or ill-typed key.
 */
export async function updateSettings(
  tx: Transaction,
  section: string,
  patch: Record<string, unknown>,
  actor: { triggeredBy: string; requestId?: string | undefined; scopes?: readonly Scope[] | undefined },
): Promise<SettingsSectionView> {
  const def = sectionDef(section);
  if (actor.scopes) checkCredentialWrites(section, def, Object.keys(patch), actor.scopes);
  const secretNames = new Set(secretKeysOf(def));
  const errors: FieldError[] = [];
  for (const [name, value] of Object.entries(patch)) {
    const validate = keyValidators().get(`${section}.${name}`);
    if (!validate) {
      errors.push({ path: `/body/${name}`, message: `is not a setting of section '${section}' (known: ${Object.keys(def.schema.properties).join(', ')})` });
    } else if (secretNames.has(name) && looksLikeSecretReference(value)) {
      // A reference stands in for the value: the value's own rules (length, URL form) apply to what it names.
      const problem = referenceProblem(section, value);
      if (problem !== undefined) errors.push({ path: `/body/${name}`, message: problem });
    } else if (value !== null && !validate(value)) {
      const e = validate.errors?.[0];
      errors.push({ path: `/body/${name}`, message: e?.message ?? 'is invalid' });
    }
  }
  const fail = (errs: FieldError[]) =>
    validationFailed(errs.map((e) => `${e.path.slice('/body/'.length)} ${e.message}`).join('; '), errs);
  if (errors.length) throw fail(errors);

  // Serialise writers of one section, so the audit row's "before" is what this change replaced.
  await tx.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`app_config:${section}`]);
  const beforeRows = await readRows(tx, section);
  const stored = new Map(beforeRows.map((r) => [r.key.slice(section.length + 1), r]));
  if (def.check) {
    // The rules see values, not their sealed form.
    const merged: Record<string, unknown> = {};
    for (const [name, r] of stored) merged[name] = r.is_secret ? await openSecret(tx, r.value, secretPlace.setting(r.key)) : r.value;
    for (const [name, value] of Object.entries(patch)) {
      if (value === null) delete merged[name];
      else merged[name] = value;
    }
    // A key holding a reference is not judged by the rules for its value (which only the backend holds).
    const crossErrors = def.check(merged).filter((e) => !looksLikeSecretReference(merged[e.path.slice('/body/'.length)]));
    if (crossErrors.length) throw fail(crossErrors);
  }

  const before: Record<string, unknown> = {};
  const after: Record<string, unknown> = {};
  const writeOnlyChanged: { key: string; change: 'set' | 'deleted' }[] = [];
  for (const [name, value] of Object.entries(patch)) {
    const key = `${section}.${name}`;
    const isSecret = secretNames.has(name);
    const old = stored.get(name);
    if (value === null) {
      if (!old) continue;
      await tx.query(`DELETE FROM app_config WHERE key = $1`, [key]);
      if (isSecret) writeOnlyChanged.push({ key: name, change: 'deleted' });
      else {
        before[name] = old.value;
        after[name] = null;
      }
      continue;
    }
    if (!isSecret && old && JSON.stringify(old.value) === JSON.stringify(value)) continue;
    await tx.query(
      `INSERT INTO app_config (key, section, value, is_secret, updated_by) VALUES ($1, $2, $3::jsonb, $4, $5)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, is_secret = EXCLUDED.is_secret,
         updated_at = now(), updated_by = EXCLUDED.updated_by`,
      [key, section, JSON.stringify(isSecret ? await sealSecret(tx, value, secretPlace.setting(key)) : value), isSecret, actor.triggeredBy],
    );
    // A secret is recorded as changed without comparing it, so the audit trail never hints at its value.
    if (isSecret) writeOnlyChanged.push({ key: name, change: 'set' });
    else {
      before[name] = old ? old.value : null;
      after[name] = value;
    }
  }

  if (Object.keys(after).length > 0 || writeOnlyChanged.length > 0) {
    await writeAudit(tx, {
      entity: 'settings',
      entityId: section,
      action: 'update',
      before,
      after: writeOnlyChanged.length ? { ...after, write_only_changed: writeOnlyChanged } : after,
      triggeredBy: actor.triggeredBy,
      requestId: actor.requestId,
    });
  }
  return viewOf(section, def, await readRows(tx, section));
}
