import Ajv from 'ajv';

/** Every setting the service reads from its environment, with defaults (units in comments). */
export interface Config {
  port: number;
  host: string;
  /** Embedded database files and generated dev certificates. */
  dataDir: string;
  /** PostgreSQL instead of PGlite when set. */
  databaseUrl: string | undefined;
  /**
   * PGlite's shared_buffers (PostgreSQL units: `32MB`, `8192kB`). PGlite's own default, 160 MB, is most of a bare
   * process's resident memory; the OS page cache still holds the data files beneath a smaller one.
   */
  pgliteSharedBuffers: string;
  /** The legacy X-Admin-Key; when unset one is generated on first start, printed once, stored hashed. */
  adminKey: string | undefined;
  /** HMAC secret for the ServiceNow and HR webhooks; the settings section can also hold one. */
  webhookSecretToken: string | undefined;
  /** Load the demo catalogue on an empty database. */
  demo: boolean;
  logLevel: string;
  /** Largest accepted request body, bytes. */
  bodyLimitBytes: number;
  /** How long SIGTERM waits for in-flight requests and jobs, ms. */
  shutdownTimeoutMs: number;
  /** Validate responses against the spec (tests). */
  validateResponses: boolean;
  /**
   * Where people reach the service (mailed approval links, mail footers), without a trailing slash. Unset:
   * `http://<host>:<port>` (filled in by buildConfig).
   */
  publicUrl: string | undefined;
  /**
   * The key approval links are signed with (base64, at least 32 bytes). Unset: a key generated once into
   * `<dataDir>/approval-link.key`; processes on other machines must then be given this instead.
   */
  approvalLinkKey: string | undefined;
  /**
   * The master key secrets at rest are sealed under (base64, at least 32 bytes). Unset: the key in `secretsKeyFile`,
   * generated on first start; processes on other machines must then be given this instead.
   */
  secretsKey: string | undefined;
  /** The master key's file when `secretsKey` is unset. Unset: `<dataDir>/secrets.key`. */
  secretsKeyFile: string | undefined;
  /**
   * A second listener serving only `GET /metrics`, unauthenticated, on `metricsHost`:`metricsPort`; unset: none.
   * Bind it to an address only the scraper reaches.
   */
  metricsPort: number | undefined;
  metricsHost: string;
  /** Record request, step, run, call, SCIM and leaver metrics (false: those hooks do nothing). */
  metricsEnabled: boolean;
  /** Failed authentications from one address within the window after which its requests are delayed; 0: never. */
  authThrottleSlowAfter: number;
  /** Failed authentications from one address within the window after which it is answered 429; 0: never. */
  authThrottleBlockAfter: number;
  /** The window failed authentications are counted in, and how long a block lasts, s; 0 turns the throttle off. */
  authThrottleWindowS: number;
  /** The first delay of a throttled address, ms; it doubles with each further failure, up to 16 times. */
  authThrottleDelayMs: number;
}

export const defaultConfig: Readonly<Config> = Object.freeze({
  port: 8080,
  host: '127.0.0.1',
  dataDir: './data',
  databaseUrl: undefined,
  pgliteSharedBuffers: '32MB',
  adminKey: undefined,
  webhookSecretToken: undefined,
  demo: false,
  logLevel: 'info',
  bodyLimitBytes: 1024 * 1024, // 1 MiB
  shutdownTimeoutMs: 10_000, // 10 s
  validateResponses: false,
  publicUrl: undefined,
  approvalLinkKey: undefined,
  secretsKey: undefined,
  secretsKeyFile: undefined,
  metricsPort: undefined,
  metricsHost: '127.0.0.1',
  metricsEnabled: true,
  authThrottleSlowAfter: 5,
  authThrottleBlockAfter: 20,
  authThrottleWindowS: 900, // 15 min
  authThrottleDelayMs: 250, // 250 ms doubling to 4 s
});

const configSchema = {
  type: 'object',
  properties: {
    port: { type: 'integer', minimum: 0, maximum: 65535 },
    host: { type: 'string', minLength: 1 },
    dataDir: { type: 'string', minLength: 1 },
    databaseUrl: { type: 'string', pattern: '^postgres(ql)?://' },
    pgliteSharedBuffers: { type: 'string', pattern: '^[1-9][0-9]*(kB|MB|GB)$' },
    adminKey: { type: 'string', minLength: 16 },
    webhookSecretToken: { type: 'string', minLength: 1 },
    demo: { type: 'boolean' },
    logLevel: { enum: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] },
    bodyLimitBytes: { type: 'integer', minimum: 1024 },
    shutdownTimeoutMs: { type: 'integer', minimum: 0 },
    validateResponses: { type: 'boolean' },
    // An absolute http(s) address without query or fragment: links are built by appending paths to it.
    publicUrl: { type: 'string', pattern: '^https?://[^\\s?#/]+(/[^\\s?#]*)?$' },
    // Base64 (standard or URL-safe) of at least 32 bytes: 43 characters or more.
    approvalLinkKey: { type: 'string', pattern: '^\\s*[A-Za-z0-9+/_-]{43,}={0,2}\\s*$' },
    secretsKey: { type: 'string', pattern: '^\\s*[A-Za-z0-9+/_-]{43,}={0,2}\\s*$' },
    secretsKeyFile: { type: 'string', minLength: 1 },
    metricsPort: { type: 'integer', minimum: 0, maximum: 65535 },
    metricsHost: { type: 'string', minLength: 1 },
    metricsEnabled: { type: 'boolean' },
    authThrottleSlowAfter: { type: 'integer', minimum: 0 },
    authThrottleBlockAfter: { type: 'integer', minimum: 0 },
    authThrottleWindowS: { type: 'integer', minimum: 0, maximum: 86400 },
    authThrottleDelayMs: { type: 'integer', minimum: 0, maximum: 60000 },
  },
} as const;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const validate = new Ajv({ allErrors: true }).compile(configSchema);

/** Defaults, then `overrides`; validated and frozen. Throws ConfigError naming the bad setting. */
export function buildConfig(overrides: Partial<Config> = {}): Readonly<Config> {
  const merged: Config = { ...defaultConfig };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) (merged as unknown as Record<string, unknown>)[k] = v;
  const plain = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined));
  if (!validate(plain)) {
    const e = validate.errors?.[0];
    // Never echo the key's value: name the setting only.
    const what = e?.instancePath === '/approvalLinkKey' || e?.instancePath === '/secretsKey' ? 'must be base64 of at least 32 bytes' : (e?.message ?? '');
    throw new ConfigError(`invalid configuration: ${e?.instancePath.slice(1) || 'config'} ${what}`.trim());
  }
  const host = merged.host.includes(':') ? `[${merged.host}]` : merged.host;
  merged.publicUrl = (merged.publicUrl ?? `http://${host}:${merged.port}`).replace(/\/+$/, '');
  return Object.freeze(merged);
}

/** The configuration named by the environment contract in the design document. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const int = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n)) throw new ConfigError(`invalid configuration: ${name} must be an integer, got '${raw}'`);
    return n;
  };
  return buildConfig({
    port: int('PORT'),
    host: env['HOST'] || undefined,
    dataDir: env['DATA_DIR'] || undefined,
    databaseUrl: env['DATABASE_URL'] || undefined,
    pgliteSharedBuffers: env['PGLITE_SHARED_BUFFERS'] || undefined,
    adminKey: env['ADMIN_KEY'] || undefined,
    webhookSecretToken: env['WEBHOOK_SECRET_TOKEN'] || undefined,
    demo: env['DEMO'] === '1' || env['DEMO'] === 'true',
    logLevel: env['LOG_LEVEL'] || undefined,
    publicUrl: env['PUBLIC_URL'] || undefined,
    approvalLinkKey: env['APPROVAL_LINK_KEY'] || undefined,
    secretsKey: env['SECRETS_KEY'] || undefined,
    secretsKeyFile: env['SECRETS_KEY_FILE'] || undefined,
    metricsPort: int('METRICS_PORT'),
    metricsHost: env['METRICS_HOST'] || undefined,
    metricsEnabled: env['METRICS_ENABLED'] === undefined || env['METRICS_ENABLED'] === '' ? undefined : !['0', 'false', 'off'].includes(env['METRICS_ENABLED'].toLowerCase()),
    authThrottleSlowAfter: int('AUTH_THROTTLE_SLOW_AFTER'),
    authThrottleBlockAfter: int('AUTH_THROTTLE_BLOCK_AFTER'),
    authThrottleWindowS: int('AUTH_THROTTLE_WINDOW_S'),
    authThrottleDelayMs: int('AUTH_THROTTLE_DELAY_MS'),
  });
}
