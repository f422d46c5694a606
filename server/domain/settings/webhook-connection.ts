/**
 * How provisioning-webhook deliveries reach their receivers, as keys of the `webhooks` settings section: `proxy`,
 * `tls`, `mtls` and `logging` with the fields and rules of an integration's configuration (adapter/http/config.ts),
 * so an admin who has configured an integration behind the corporate proxy or towards a private CA writes the
 * same JSON here. The two secrets of those objects, the proxy password and the client key, are keys of their own
 * (`proxy_password`, `mtls_key`): the settings store keeps secrecy per key (write-only, never read back, audited
 * only as "set"), and a secret nested in an object key would be returned and audited with it.
 */
import {
  checkMtlsMaterial, integrationConfigSchema, isRecord, validateIntegrationConfig, type ConfigIssue, type EndpointConnection, type FieldError,
} from '../../../adapter';

type Schema = Record<string, unknown>;

/**
 * A deep copy of a piece of the integration configuration's schema as the shape of one settings key: without its
 * conditional rules (`if`/`then`), which name fields across the object in a way the settings validator's strict
 * mode refuses, and which {@link checkWebhookConnection} applies with the integration's own validator anyway.
 */
function shapeOf(schema: unknown): Schema {
  const strip = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(strip);
    if (!isRecord(node)) return node;
    const out: Schema = {};
    for (const [k, v] of Object.entries(node)) if (k !== 'if' && k !== 'then') out[k] = strip(v);
    return out;
  };
  return strip(schema) as Schema;
}

/**
 * `schema` with the property `name` of the object at `path` taken out, and out of the rules of that object that
 * name it (`required`, `dependencies`).
 */
function withoutProperty(schema: Schema, path: readonly string[], name: string): Schema {
  let node = schema;
  for (const p of path) node = (node['properties'] as Record<string, Schema>)[p]!;
  delete (node['properties'] as Schema)[name];
  const drop = (list: unknown) => (Array.isArray(list) ? list.filter((n) => n !== name) : list);
  if (node['required'] !== undefined) node['required'] = drop(node['required']);
  if (isRecord(node['dependencies'])) {
    const deps: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node['dependencies'])) {
      const kept = drop(v);
      if (k !== name && !(Array.isArray(kept) && kept.length === 0)) deps[k] = kept;
    }
    if (Object.keys(deps).length > 0) node['dependencies'] = deps;
    else delete node['dependencies'];
  }
  return schema;
}

const pieces = integrationConfigSchema.properties;

const proxySchema = (() => {
  const s = withoutProperty(shapeOf(pieces.proxy), ['auth'], 'password');
  // `secrets_manager` names entries of a secret store, and no secret store is wired to webhook deliveries: with it
  // every delivery would fail, so it is refused here rather than at the first runbook.
  const auth = (s['properties'] as Record<string, Schema>)['auth']!;
  (auth['properties'] as Record<string, Schema>)['mode'] = { enum: ['none', 'basic'], default: 'none' };
  return s;
})();

/** The `webhooks` section's connection keys, each an integration configuration's schema piece. */
export const WEBHOOK_CONNECTION_KEYS = {
  proxy: {
    ...proxySchema,
    description:
      'Forward proxy for deliveries, as an integration\'s `proxy`: {"override": true, "mode": "proxy", "host": ..., "port": ..., ' +
      '"auth": {"mode": "basic", "username": ...}}; the password is `proxy_password`. Unset: deliveries go direct.',
  },
  proxy_password: { type: 'string', minLength: 1, maxLength: 1024, writeOnly: true, description: 'Password for the proxy\'s Basic authentication (`proxy.auth.mode` basic).' },
  tls: {
    ...shapeOf(pieces.tls),
    description: 'As an integration\'s `tls`: {"enabled": true, "reject_unauthorized": false} accepts any receiver certificate (tests only).',
  },
  mtls: {
    ...withoutProperty(shapeOf(pieces.mtls), [], 'key'),
    description:
      'As an integration\'s `mtls`, PEM data URLs: `ca` trusts a receiver certificate issued by a private CA; `cert` (with `mtls_key`) ' +
      'is the client certificate presented to receivers that ask for one.',
  },
  mtls_key: {
    type: 'string', pattern: '^data:[^,]*,', maxLength: 65536, writeOnly: true,
    description: 'Private key of `mtls.cert`, a PEM data URL (unencrypted).',
  },
  logging: {
    ...shapeOf(pieces.logging),
    description: 'As an integration\'s `logging`: the level of delivery log lines (request and response, secrets redacted) and an optional syslog target.',
  },
} as const satisfies Record<string, Schema & { writeOnly?: boolean }>;

/**
 * The connection deliveries use, from the `webhooks` section's stored values (secrets included); undefined when
 * none of its keys is set, so deliveries go direct with the system trust store.
 */
export function webhookConnectionOf(values: Readonly<Record<string, unknown>>): EndpointConnection | undefined {
  const connection: EndpointConnection = {};
  const proxy = values['proxy'];
  if (isRecord(proxy)) {
    const password = values['proxy_password'];
    const auth = proxy['auth'];
    connection.proxy = (typeof password === 'string' && isRecord(auth) ? { ...proxy, auth: { ...auth, password } } : proxy) as EndpointConnection['proxy'];
  }
  if (isRecord(values['tls'])) connection.tls = values['tls'] as EndpointConnection['tls'];
  const mtls = values['mtls'];
  const key = values['mtls_key'];
  if (isRecord(mtls) || typeof key === 'string') {
    connection.mtls = { ...(isRecord(mtls) ? mtls : {}), ...(typeof key === 'string' ? { key } : {}) } as EndpointConnection['mtls'];
  }
  if (isRecord(values['logging'])) connection.logging = values['logging'] as EndpointConnection['logging'];
  return Object.keys(connection).length > 0 ? connection : undefined;
}

/** An issue of the assembled connection at the key the admin wrote (the secrets live in keys of their own). */
function fieldOf(issue: ConfigIssue): FieldError {
  const path = issue.path === '/proxy/auth/password' ? '/proxy_password' : issue.path === '/mtls/key' ? '/mtls_key' : issue.path;
  return { path: `/body${path}`, message: issue.message };
}

/**
 * The rules across the connection keys, on the section as it would be after a change: the integration
 * configuration's own (a Basic proxy needs `proxy_password`, a client certificate needs `mtls_key` and the other
 * way round) and usable certificate material, so a bad setting is refused when saved, not at the next delivery.
 */
export function checkWebhookConnection(merged: Readonly<Record<string, unknown>>): FieldError[] {
  const connection = webhookConnectionOf(merged);
  if (connection === undefined) return [];
  // The receiver comes from each task's URL; any host satisfies the configuration's required `server`.
  const checked = validateIntegrationConfig({ server: { host: 'webhook.receiver' }, ...connection });
  if (!checked.ok) return checked.errors.map(fieldOf);
  const mtls = connection.mtls;
  return mtls ? checkMtlsMaterial(mtls.cert, mtls.key, mtls.ca).map(fieldOf) : [];
}
