import { onFirstUse } from '../lazy';
import Ajv, { type ErrorObject } from 'ajv';

/**
 * The configuration of one integration (a configured instance of an integration model), with the fields, types,
 * defaults and ranges of the Itential "Manage integrations" page. Field names are snake_case because operators edit
 * this object as JSON in the advanced view.
 */

const HTTP_METHODS_FOR_KEY = ['GET', 'POST', 'HEAD', 'PUT', 'PATCH'] as const;
export const AUTH_TYPES = [
  'none',
  'api_key',
  'basic',
  'bearer',
  'aws_sigv4',
  'oauth2_client_credentials',
  'oauth2_password',
  'oauth2_authorization_code',
  'openid_connect',
  'ntlm',
  'xenapi_session',
  'negotiate',
] as const;
export type AuthType = (typeof AUTH_TYPES)[number];
export const LOG_LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const SYSLOG_FACILITY_NAMES = [
  'kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp',
  'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
] as const;

const nonEmpty = { type: 'string', minLength: 1 } as const;
const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;
const httpUrl = { type: 'string', pattern: '^https?://[^\\s/]+' } as const;
// PEM material arrives as a data URL (what a browser file input produces); the payload is base64 or URL-encoded text.
const pemDataUrl = { type: 'string', pattern: '^data:[^,]*,' } as const;
/** A Kerberos principal with its realm: `name@REALM` or `service/host@REALM` (what kinit takes). */
const KERBEROS_PRINCIPAL = '^[^\\s@/]+(/[^\\s@]+)?@[A-Za-z0-9.-]+$';
/** A service principal name without realm, as Windows writes it: `HTTP/host` (setspn's form). */
const SERVICE_PRINCIPAL_NAME = '^[^\\s/@]+/[^\\s/@]+$';

// Fields shared by every OAuth 2.0 flavour; OIDC drops token_url (it is discovered).
const oauthClientFields = {
  client_id: nonEmpty,
  client_secret: { type: 'string' },
  refresh_url: httpUrl,
  scope: { type: 'string' },
  auth_method: { enum: ['client_secret_basic', 'client_secret_post'], default: 'client_secret_post' },
  // Pre-set in the advanced view when the operator already holds a valid token.
  access_token: { type: 'string' },
  refresh_token: { type: 'string' },
  // When the held access token expires (ms since the epoch), persisted with the tokens so a restart refreshes in time.
  expires_at: { type: 'integer', minimum: 0 },
} as const;

export const integrationConfigSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://provisio.local/schemas/integration-config.json',
  title: 'IntegrationConfig',
  type: 'object',
  additionalProperties: false,
  required: ['server'],
  properties: {
    server: {
      type: 'object',
      additionalProperties: false,
      required: ['host'],
      properties: {
        protocol: { enum: ['http', 'https'], default: 'http' },
        host: nonEmpty,
        port,
        base_path: { type: 'string', pattern: '^(/.*)?$' },
        version: { type: 'string' },
      },
    },
    authentication: {
      type: 'object',
      default: { type: 'none' },
      required: ['type'],
      properties: { type: { enum: AUTH_TYPES } },
      discriminator: { propertyName: 'type' },
      oneOf: [
        { type: 'object', additionalProperties: false, required: ['type'], properties: { type: { const: 'none' } } },
        {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'name'],
          properties: {
            type: { const: 'api_key' },
            value: { type: 'string' },
            dynamic: {
              type: 'object',
              additionalProperties: false,
              required: ['method', 'url'],
              properties: {
                method: { enum: HTTP_METHODS_FOR_KEY },
                url: httpUrl,
                // RFC 6901; blank means the whole response body is the key.
                response_pointer: { type: 'string', pattern: '^(/.*)?$' },
                body: {},
                headers: { type: 'object', additionalProperties: { type: 'string' } },
              },
            },
            in: { enum: ['header', 'query', 'cookie'], default: 'header' },
            name: nonEmpty,
          },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'username', 'password'],
          properties: { type: { const: 'basic' }, username: nonEmpty, password: { type: 'string' } },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'token'],
          properties: { type: { const: 'bearer' }, token: nonEmpty },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'access_key_id', 'secret_access_key', 'region', 'service'],
          properties: {
            type: { const: 'aws_sigv4' },
            access_key_id: nonEmpty,
            secret_access_key: nonEmpty,
            session_token: { type: 'string' },
            region: nonEmpty,
            service: nonEmpty,
          },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'client_id', 'token_url'],
          properties: { type: { const: 'oauth2_client_credentials' }, ...oauthClientFields, token_url: httpUrl },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'client_id', 'token_url', 'username', 'password'],
          properties: {
            type: { const: 'oauth2_password' },
            ...oauthClientFields,
            token_url: httpUrl,
            username: nonEmpty,
            password: { type: 'string' },
          },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'client_id', 'token_url', 'authorization_url'],
          properties: {
            type: { const: 'oauth2_authorization_code' },
            ...oauthClientFields,
            token_url: httpUrl,
            authorization_url: httpUrl,
            redirect_uri: httpUrl,
          },
        },
        {
          type: 'object',
          additionalProperties: false,
          // issuer or discovery_url: checked in validateIntegrationConfig, where the message can say so plainly.
          required: ['type', 'client_id'],
          properties: {
            type: { const: 'openid_connect' },
            ...oauthClientFields,
            // The issuer URL; the discovery document is `<issuer>/.well-known/openid-configuration` unless
            // discovery_url names another place.
            issuer: httpUrl,
            discovery_url: httpUrl,
          },
        },
        {
          // Windows NTLM (HTTP Negotiate without Kerberos), e.g. ConfigMgr AdminService. The user may be written
          // DOMAIN\user or given with `domain`.
          type: 'object',
          additionalProperties: false,
          required: ['type', 'username', 'password'],
          properties: {
            type: { const: 'ntlm' },
            username: nonEmpty,
            password: { type: 'string' },
            domain: { type: 'string' },
            workstation: { type: 'string' },
          },
        },
        {
          // XenServer / XCP-ng: a XenAPI session bought with session.login_with_password and put into every
          // JSON-RPC call's first parameter (adapter/http/auth/xenapi-session.ts).
          type: 'object',
          additionalProperties: false,
          required: ['type', 'username', 'password'],
          properties: {
            type: { const: 'xenapi_session' },
            username: nonEmpty,
            password: { type: 'string' },
            login_path: { type: 'string', pattern: '^/' },
            originator: { type: 'string' },
          },
        },
        {
          // Kerberos through HTTP Negotiate (SPNEGO, RFC 4559), e.g. ConfigMgr AdminService or WinRM in a domain:
          // a ticket for `principal` from a keytab or a password (adapter/http/auth/negotiate.ts). Exactly one of
          // keytab and password; checked in validateIntegrationConfig, where the message can say so plainly.
          type: 'object',
          additionalProperties: false,
          required: ['type', 'principal'],
          properties: {
            type: { const: 'negotiate' },
            principal: { type: 'string', pattern: KERBEROS_PRINCIPAL },
            // The keytab file's bytes in base64 (or a secret reference); a secret like a password.
            keytab: nonEmpty,
            password: { type: 'string' },
            // Default `HTTP/<host of the request URL>`; set it when the server is reached by another name (an
            // alias, an IP address) than the one its SPN was registered under.
            spn: { type: 'string', pattern: SERVICE_PRINCIPAL_NAME },
            mech: { enum: ['spnego', 'krb5'], default: 'spnego' },
          },
        },
      ],
    },
    mtls: {
      type: 'object',
      additionalProperties: false,
      // A CA alone trusts a private server CA; a client certificate needs its key and the other way round.
      dependencies: { cert: ['key'], key: ['cert'] },
      properties: { cert: pemDataUrl, key: pemDataUrl, ca: pemDataUrl },
    },
    tls: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: false },
        reject_unauthorized: { type: 'boolean', default: true },
      },
    },
    /** Milliseconds to wait for the whole response. */
    timeout: { type: 'integer', minimum: 1 },
    cluster: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { override: { type: 'boolean', default: false }, cluster_id: nonEmpty },
      if: { properties: { override: { const: true } }, required: ['override'] },
      then: { required: ['cluster_id'] },
    },
    proxy: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        override: { type: 'boolean', default: false },
        mode: { enum: ['direct', 'cluster_no_proxy', 'proxy'], default: 'direct' },
        host: nonEmpty,
        port,
        auth: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            mode: { enum: ['none', 'basic', 'secrets_manager'], default: 'none' },
            // For secrets_manager both are secret references (vault://…, awssm://…), resolved before each call.
            username: { type: 'string' },
            password: { type: 'string' },
          },
          if: { properties: { mode: { enum: ['basic', 'secrets_manager'] } }, required: ['mode'] },
          then: { required: ['username', 'password'] },
        },
      },
      if: { properties: { mode: { const: 'proxy' } }, required: ['mode'] },
      then: { required: ['host', 'port'] },
    },
    logging: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: { enum: LOG_LEVELS, default: 'info' },
        syslog: {
          type: 'object',
          additionalProperties: false,
          required: ['host'],
          properties: {
            host: nonEmpty,
            port,
            protocol: { enum: ['udp4', 'tcp4'], default: 'udp4' },
            facility: { enum: SYSLOG_FACILITY_NAMES, default: 'local0' },
            app_name: { type: 'string' },
            // The syslog target's own level; the integration's level when absent.
            level: { enum: LOG_LEVELS },
          },
        },
      },
    },
  },
} as const;

export interface ServerConfig {
  protocol: 'http' | 'https';
  host: string;
  port?: number;
  base_path?: string;
  version?: string;
}

export interface DynamicApiKeyConfig {
  method: (typeof HTTP_METHODS_FOR_KEY)[number];
  url: string;
  /** RFC 6901 pointer into the key response; blank or absent uses the whole body. */
  response_pointer?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

interface OAuthClientFields {
  client_id: string;
  client_secret?: string;
  refresh_url?: string;
  scope?: string;
  auth_method: 'client_secret_basic' | 'client_secret_post';
  access_token?: string;
  refresh_token?: string;
  expires_at?: number;
}

export type AuthenticationConfig =
  | { type: 'none' }
  | { type: 'api_key'; value?: string; dynamic?: DynamicApiKeyConfig; in: 'header' | 'query' | 'cookie'; name: string }
  | { type: 'basic'; username: string; password: string }
  | { type: 'bearer'; token: string }
  | {
      type: 'aws_sigv4';
      access_key_id: string;
      secret_access_key: string;
      session_token?: string;
      region: string;
      service: string;
    }
  | ({ type: 'oauth2_client_credentials'; token_url: string } & OAuthClientFields)
  | ({ type: 'oauth2_password'; token_url: string; username: string; password: string } & OAuthClientFields)
  | ({
      type: 'oauth2_authorization_code';
      token_url: string;
      authorization_url: string;
      redirect_uri?: string;
    } & OAuthClientFields)
  | ({ type: 'openid_connect'; issuer?: string; discovery_url?: string } & OAuthClientFields)
  | { type: 'ntlm'; username: string; password: string; domain?: string; workstation?: string }
  | { type: 'xenapi_session'; username: string; password: string; login_path?: string; originator?: string }
  | {
      type: 'negotiate';
      /** `name@REALM`. */
      principal: string;
      /** Base64 of a keytab file holding the principal's keys; or `password`. */
      keytab?: string;
      password?: string;
      /** `HTTP/host`; default `HTTP/<host of the request URL>`. */
      spn?: string;
      /** The GSS mechanism of the token: SPNEGO-wrapped (what IIS and WinRM expect) or a raw Kerberos token. */
      mech: 'spnego' | 'krb5';
    };

export type OAuthConfig = Extract<AuthenticationConfig, { client_id: string }>;

export interface MtlsConfig {
  /** PEM data URLs. */
  cert?: string;
  key?: string;
  ca?: string;
}

export interface SyslogConfig {
  host: string;
  /** Default 514. */
  port?: number;
  protocol: 'udp4' | 'tcp4';
  facility: (typeof SYSLOG_FACILITY_NAMES)[number];
  app_name?: string;
  level?: LogLevel;
}

/** A validated configuration: every default applied. */
export interface IntegrationConfig {
  server: ServerConfig;
  authentication: AuthenticationConfig;
  mtls?: MtlsConfig;
  tls: { enabled: boolean; reject_unauthorized: boolean };
  /** Milliseconds. */
  timeout?: number;
  cluster: { override: boolean; cluster_id?: string };
  proxy: {
    override: boolean;
    mode: 'direct' | 'cluster_no_proxy' | 'proxy';
    host?: string;
    port?: number;
    auth: { mode: 'none' | 'basic' | 'secrets_manager'; username?: string; password?: string };
  };
  logging: { level: LogLevel; syslog?: SyslogConfig };
}

type DeepPartial<T> = T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;
type Defaulted<T, K extends PropertyKey> = T extends unknown ? Omit<T, K & keyof T> & Partial<Pick<T, K & keyof T>> : never;

/** What an operator writes: the same shape with every defaulted field optional. */
export interface IntegrationConfigInput {
  server: Defaulted<ServerConfig, 'protocol'>;
  authentication?: Defaulted<AuthenticationConfig, 'auth_method' | 'in' | 'mech'>;
  mtls?: MtlsConfig;
  tls?: DeepPartial<IntegrationConfig['tls']>;
  timeout?: number;
  cluster?: DeepPartial<IntegrationConfig['cluster']>;
  proxy?: DeepPartial<IntegrationConfig['proxy']>;
  logging?: { level?: LogLevel; syslog?: Defaulted<SyslogConfig, 'protocol' | 'facility'> };
}

/** One problem with a configuration: an RFC 6901 pointer to the field (relative to the configuration) and why. */
export interface ConfigIssue {
  path: string;
  message: string;
}

export type ConfigValidation = { ok: true; config: IntegrationConfig } | { ok: false; errors: ConfigIssue[] };

const ajv = new Ajv({
  allErrors: true,
  useDefaults: true,
  discriminator: true,
  // `required` on the discriminated parent names `type`, which only the branches define precisely.
  strictRequired: false,
});
const validateSchema = onFirstUse(() => ajv.compile(integrationConfigSchema));

/**
 * Checks `input` against {@link integrationConfigSchema} and the rules a schema cannot say well, and returns a deep
 * copy with every default applied, or every problem found (each naming its field). Never throws on bad input.
 */
export function validateIntegrationConfig(input: unknown): ConfigValidation {
  const copy: unknown = input === undefined ? undefined : structuredClone(input);
  const validate = validateSchema();
  if (!validate(copy)) {
    return { ok: false, errors: dedupe((validate.errors ?? []).flatMap(toIssue)) };
  }
  const config = copy as IntegrationConfig;
  const errors: ConfigIssue[] = [];
  const auth = config.authentication;
  if (auth.type === 'api_key' && auth.value === undefined && auth.dynamic === undefined) {
    errors.push({ path: '/authentication/value', message: 'is required unless the key is retrieved dynamically (dynamic)' });
  }
  if (auth.type === 'api_key' && auth.value !== undefined && auth.dynamic !== undefined) {
    errors.push({ path: '/authentication/dynamic', message: 'cannot be combined with a static value' });
  }
  if (auth.type === 'openid_connect' && auth.issuer === undefined && auth.discovery_url === undefined) {
    errors.push({ path: '/authentication/issuer', message: 'is required unless discovery_url names the discovery document' });
  }
  if (auth.type === 'negotiate') errors.push(...negotiateIssues(auth));
  return errors.length > 0 ? { ok: false, errors } : { ok: true, config };
}

/**
 * Exactly one credential, and a keytab that is one: MIT keytab files start with the version bytes 0x05 0x02. A
 * value that is not plain base64 (a secret reference such as `vault://…`, or a sealed value) is checked where it is
 * opened instead.
 */
function negotiateIssues(auth: Extract<AuthenticationConfig, { type: 'negotiate' }>): ConfigIssue[] {
  if (auth.keytab === undefined && auth.password === undefined) {
    return [{ path: '/authentication/keytab', message: 'or password is required (the credential the Kerberos ticket is obtained with)' }];
  }
  if (auth.keytab !== undefined && auth.password !== undefined) {
    return [{ path: '/authentication/password', message: 'cannot be combined with a keytab; give one of them' }];
  }
  if (auth.keytab !== undefined && !auth.keytab.includes(':')) {
    const bytes = /^[A-Za-z0-9+/=\s]+$/.test(auth.keytab) ? Buffer.from(auth.keytab, 'base64') : Buffer.alloc(0);
    if (bytes.length < 4 || bytes[0] !== 5 || bytes[1] !== 2) {
      return [{ path: '/authentication/keytab', message: 'must be a keytab file in base64 (an MIT keytab, format 0x0502), or a secret reference' }];
    }
  }
  return [];
}

function toIssue(e: ErrorObject): ConfigIssue[] {
  const at = e.instancePath;
  switch (e.keyword) {
    // if/then reports the failed branch separately; the `required` error inside `then` already names the field.
    case 'if':
      return [];
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      const why = e.schemaPath.includes('/then/') ? ` when ${conditionText(at)}` : '';
      return [{ path: `${at}/${missing}`, message: `is required${why}` }];
    }
    case 'dependencies': {
      const p = e.params as { property: string; missingProperty: string };
      return [{ path: `${at}/${p.missingProperty}`, message: `is required together with ${p.property}` }];
    }
    case 'additionalProperties':
      return [{ path: `${at}/${(e.params as { additionalProperty: string }).additionalProperty}`, message: 'is not a known field' }];
    case 'discriminator':
      return [{ path: `${at}/type`, message: `must be one of ${AUTH_TYPES.join(', ')}` }];
    case 'enum':
      return [{ path: at, message: `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` }];
    case 'pattern':
      return [{ path: at, message: patternText(e.schemaPath) }];
    default:
      return [{ path: at, message: e.message ?? 'is invalid' }];
  }
}

function conditionText(at: string): string {
  if (at === '/proxy') return 'proxy mode is "proxy"';
  if (at === '/proxy/auth') return 'proxy auth mode is basic or secrets_manager';
  if (at === '/cluster') return 'override is true';
  return 'required by another field';
}

function patternText(schemaPath: string): string {
  if (schemaPath.includes('/mtls/')) return 'must be a PEM data URL (data:...;base64,...)';
  if (/url\/pattern$/.test(schemaPath)) return 'must be an http(s) URL';
  if (schemaPath.includes('base_path')) return 'must start with /';
  if (schemaPath.includes('response_pointer')) return 'must be a JSON pointer (RFC 6901) starting with /';
  if (schemaPath.includes('/principal/')) return 'must be a Kerberos principal name@REALM (or service/host@REALM)';
  if (schemaPath.includes('/spn/')) return 'must be a service principal name service/host (e.g. HTTP/sccm.corp.example), without realm';
  return 'has the wrong format';
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.path}\u0000${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * RFC 6901 pointers of every field that holds a secret. These are stored as secrets: never returned by reads, never
 * logged, never written into audit diffs. Bodies and headers of a dynamic key request count as secrets because they
 * usually carry the credentials the key is bought with.
 */
export const SECRET_CONFIG_PATHS: readonly string[] = Object.freeze([
  '/authentication/value',
  '/authentication/dynamic/body',
  '/authentication/dynamic/headers',
  '/authentication/password',
  '/authentication/token',
  '/authentication/secret_access_key',
  '/authentication/session_token',
  '/authentication/client_secret',
  '/authentication/access_token',
  '/authentication/refresh_token',
  '/authentication/expires_at',
  '/authentication/keytab',
  '/mtls/key',
  '/proxy/auth/password',
]);

export const REDACTED = '[redacted]';

/** A deep copy of `config` with every present secret (see {@link SECRET_CONFIG_PATHS}) replaced by `replacement`. */
export function redactConfig<T>(config: T, replacement: unknown = REDACTED): T {
  if (config === null || typeof config !== 'object') return config;
  const copy = structuredClone(config) as Record<string, unknown>;
  for (const pointer of SECRET_CONFIG_PATHS) {
    const parts = pointer.split('/').slice(1);
    const last = parts.pop() as string;
    let node: unknown = copy;
    for (const p of parts) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[p] : undefined;
    if (node !== null && typeof node === 'object' && (node as Record<string, unknown>)[last] !== undefined) {
      (node as Record<string, unknown>)[last] = replacement;
    }
  }
  return copy as T;
}
