/**
 * AWS Secrets Manager (API version 2017-10-17, JSON 1.1 protocol) as a secret backend: `awssm://<secret-id>[#<field>]`
 * reads `GetSecretValue`; the migration writes with `CreateSecret`, or `PutSecretValue` when the secret exists.
 * Requests are signed with SigV4 by the integration transport's `aws_sigv4` scheme (adapter/http/auth/sigv4.ts), with
 * static keys, or with temporary credentials from STS `AssumeRole` (API version 2011-06-15, Query protocol) that are
 * kept until shortly before their `Expiration` and then fetched anew.
 *
 * Settings keys (section `secret_backend`): `aws_region`; `aws_access_key_id`, `aws_secret_access_key`,
 * `aws_session_token` (static credentials, also the ones AssumeRole is called with); `aws_role_arn`,
 * `aws_external_id`, `aws_role_session_name` (AssumeRole); `aws_secretsmanager_endpoint`, `aws_sts_endpoint`
 * (overrides: VPC endpoints, tests); `aws_ca_cert_pem` (a private CA for those endpoints).
 *
 * Values: `SecretString` as is, or one field of it when the reference names one (the secret must then be a JSON
 * object; a non-string field is answered as its JSON text). A secret holding only `SecretBinary` is answered as its
 * bytes read as UTF-8 (a PEM file stored as binary, say) when they are valid UTF-8 and no field is named; a field
 * of a binary secret, or bytes that are not text, are an error naming SecretBinary: the places a reference fills
 * (passwords, keys, URLs) take text.
 */
import { createHash, randomUUID } from 'node:crypto';
import { CallNotMadeError, pemToDataUrl, type IntegrationConfigInput, type IntegrationEnvelope } from '../../http';
import { formatSecretReference } from '../references';
import { SecretBackendError, type SecretBackend, type SecretBackendErrorCode, type SecretBackendSettings, type SecretReference } from '../backend';
import { BackendClients, serverOf, type BackendHttpDeps } from './client-cache';
import { stringSetting } from './http';

export interface AwsSecretsManagerDeps extends BackendHttpDeps {
  /**
   * Milliseconds since the epoch, for deciding when temporary credentials are due for renewal; injectable so a test
   * can move past the refresh point without waiting. Requests are signed with the real time either way.
   */
  now?: (() => number) | undefined;
}

/** Temporary credentials are renewed this long before their Expiration (or halfway through a shorter life). */
export const ASSUME_ROLE_REFRESH_MARGIN_MS = 5 * 60_000;
/** The session length asked of AssumeRole: STS's default, and within every role's maximum. Seconds. */
const ASSUME_ROLE_DURATION_S = 3600;
const DEFAULT_SESSION_NAME = 'provisio';

interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

interface AwsSettings {
  region: string;
  secretsManager: URL;
  sts: URL;
  keys: AwsCredentials;
  role?: { arn: string; externalId?: string | undefined; sessionName: string } | undefined;
  caPem?: string | undefined;
}

interface HeldSession {
  /** Which role, keys and endpoint they were obtained for: another configuration does not reuse them. */
  for: string;
  credentials: AwsCredentials;
  refreshAt: number;
  expiresAt: number;
}

export interface AwsSecretsManagerBackend extends SecretBackend {
  /** Closes kept-alive connections. */
  close(): void;
}

export function createAwsSecretsManagerBackend(deps: AwsSecretsManagerDeps = {}): AwsSecretsManagerBackend {
  const now = deps.now ?? Date.now;
  const clients = new BackendClients('secret-backend:awssm', deps);
  let session: HeldSession | undefined;
  let renewing: { for: string; promise: Promise<HeldSession> } | undefined;

  /** The credentials requests are signed with: the static keys, or the role's current temporary ones. */
  async function credentialsFor(s: AwsSettings, reference: string | undefined): Promise<AwsCredentials> {
    if (!s.role) return s.keys;
    // Every input of the AssumeRole call: a changed setting (a rotated key too) takes effect at the next read.
    const key = createHash('sha256').update(JSON.stringify([s.role, s.keys, s.sts.href, s.region, s.caPem])).digest('hex');
    if (session && session.for === key && now() < session.refreshAt) return session.credentials;
    // One AssumeRole at a time for a configuration: concurrent cold reads share it.
    if (!renewing || renewing.for !== key) {
      const promise = assumeRole(s, key, reference).finally(() => {
        if (renewing?.promise === promise) renewing = undefined;
      });
      renewing = { for: key, promise };
    }
    session = await renewing.promise;
    return session.credentials;
  }

  async function assumeRole(s: AwsSettings, key: string, reference: string | undefined): Promise<HeldSession> {
    const role = s.role!;
    const form = new URLSearchParams({
      Action: 'AssumeRole',
      Version: '2011-06-15',
      RoleArn: role.arn,
      RoleSessionName: role.sessionName,
      DurationSeconds: String(ASSUME_ROLE_DURATION_S),
    });
    if (role.externalId !== undefined) form.set('ExternalId', role.externalId);
    const env = await send(s, s.sts, 'sts', s.keys, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, form.toString(), reference, 'STS AssumeRole');
    if (!env.ok) throw failure(env, reference, `STS AssumeRole of ${role.arn}`, stsError(env));
    const text = env.text ?? '';
    const credentials = xmlElement(text, 'Credentials');
    const accessKeyId = credentials && xmlElement(credentials, 'AccessKeyId');
    const secretAccessKey = credentials && xmlElement(credentials, 'SecretAccessKey');
    const sessionToken = credentials && xmlElement(credentials, 'SessionToken');
    const expiration = credentials && xmlElement(credentials, 'Expiration');
    const expiresAt = expiration === undefined ? NaN : Date.parse(expiration);
    if (!accessKeyId || !secretAccessKey || !sessionToken || Number.isNaN(expiresAt)) {
      throw new SecretBackendError('SECRET_BACKEND_UNREACHABLE', `${prefix(reference)}STS AssumeRole of ${role.arn} answered without usable Credentials`, reference);
    }
    const issuedAt = now();
    const margin = Math.min(ASSUME_ROLE_REFRESH_MARGIN_MS, Math.max(0, (expiresAt - issuedAt) / 2));
    return { for: key, credentials: { accessKeyId, secretAccessKey, sessionToken }, expiresAt, refreshAt: expiresAt - margin };
  }

  async function send(
    s: AwsSettings,
    endpoint: URL,
    service: 'secretsmanager' | 'sts',
    creds: AwsCredentials,
    headers: Record<string, string>,
    body: string,
    reference: string | undefined,
    what: string,
  ): Promise<IntegrationEnvelope> {
    const config: IntegrationConfigInput = {
      server: serverOf(endpoint),
      authentication: {
        type: 'aws_sigv4',
        access_key_id: creds.accessKeyId,
        secret_access_key: creds.secretAccessKey,
        ...(creds.sessionToken !== undefined ? { session_token: creds.sessionToken } : {}),
        region: s.region,
        service,
      },
      ...(s.caPem !== undefined ? { mtls: { ca: pemToDataUrl(s.caPem) } } : {}),
    };
    const out = await clients.clientFor(config).send({ method: 'POST', path: '/', headers, body });
    if (out instanceof CallNotMadeError) {
      throw new SecretBackendError('SECRET_BACKEND_UNREACHABLE', `${prefix(reference)}${what} at ${endpoint.origin} could not be made: ${out.message}`, reference);
    }
    return out;
  }

  /** One Secrets Manager operation; throws with AWS's error type named when it answers with one. */
  async function call(s: AwsSettings, operation: string, input: Record<string, unknown>, reference: string | undefined): Promise<Record<string, unknown>> {
    const creds = await credentialsFor(s, reference);
    const env = await send(
      s,
      s.secretsManager,
      'secretsmanager',
      creds,
      { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `secretsmanager.${operation}` },
      JSON.stringify(input),
      reference,
      `Secrets Manager ${operation}`,
    );
    if (env.ok && isObject(env.body)) return env.body;
    const error = jsonError(env);
    // Temporary credentials revoked or expired early: the next read assumes the role again.
    if (s.role && (error.type === 'ExpiredTokenException' || error.type === 'UnrecognizedClientException')) session = undefined;
    throw failure(env, reference, `Secrets Manager ${operation}`, error);
  }

  return {
    scheme: 'awssm',

    async read(ref: SecretReference, settings: SecretBackendSettings): Promise<string> {
      const s = awsSettings(settings, ref.raw);
      const answer = await call(s, 'GetSecretValue', { SecretId: ref.path }, ref.raw);
      return valueOf(answer, ref);
    },

    async write(name: string, value: string, settings: SecretBackendSettings): Promise<SecretReference> {
      const s = awsSettings(settings, undefined);
      try {
        // Outside the SDKs the idempotency token is the caller's to make (the API says so); one per attempt.
        await call(s, 'CreateSecret', { Name: name, SecretString: value, ClientRequestToken: randomUUID() }, undefined);
      } catch (e) {
        if (!(e instanceof SecretBackendError) || !e.message.includes('ResourceExistsException')) throw e;
        await call(s, 'PutSecretValue', { SecretId: name, SecretString: value, ClientRequestToken: randomUUID() }, undefined);
      }
      return { scheme: 'awssm', raw: formatSecretReference('awssm', name), path: name };
    },

    close: () => clients.close(),
  };
}

/** The backend's settings, or NOT_CONFIGURED naming the keys that are missing or unusable. */
function awsSettings(settings: SecretBackendSettings, reference: string | undefined): AwsSettings {
  const get = (k: string) => stringSetting(settings, k);
  const region = get('aws_region');
  const accessKeyId = get('aws_access_key_id');
  const secretAccessKey = get('aws_secret_access_key');
  const missing = [
    ...(region ? [] : ['aws_region']),
    ...(accessKeyId ? [] : ['aws_access_key_id']),
    ...(secretAccessKey ? [] : ['aws_secret_access_key']),
  ];
  if (missing.length > 0) {
    throw new SecretBackendError('SECRET_BACKEND_NOT_CONFIGURED', `${prefix(reference)}AWS Secrets Manager needs secret_backend.${missing.join(', secret_backend.')}`, reference);
  }
  const endpoint = (key: string, fallback: string): URL => {
    const v = get(key) ?? fallback;
    try {
      const url = new URL(v);
      if (url.protocol === 'https:' || url.protocol === 'http:') return url;
    } catch {
      /* named below */
    }
    throw new SecretBackendError('SECRET_BACKEND_NOT_CONFIGURED', `${prefix(reference)}secret_backend.${key} is not an http(s) URL`, reference);
  };
  const roleArn = get('aws_role_arn');
  const sessionToken = get('aws_session_token');
  const externalId = get('aws_external_id');
  const caPem = get('aws_ca_cert_pem');
  return {
    region: region!,
    secretsManager: endpoint('aws_secretsmanager_endpoint', `https://secretsmanager.${region}.amazonaws.com`),
    // The regional STS endpoint: the global one (sts.amazonaws.com) is a single region's service in disguise.
    sts: endpoint('aws_sts_endpoint', `https://sts.${region}.amazonaws.com`),
    keys: { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey!, ...(sessionToken ? { sessionToken } : {}) },
    ...(roleArn ? { role: { arn: roleArn, externalId, sessionName: get('aws_role_session_name') ?? DEFAULT_SESSION_NAME } } : {}),
    ...(caPem ? { caPem } : {}),
  };
}

/** What a GetSecretValue answer gives for `ref` (see the module comment for binary secrets and fields). */
function valueOf(answer: Record<string, unknown>, ref: SecretReference): string {
  const text = answer['SecretString'];
  if (typeof text !== 'string') {
    const binary = answer['SecretBinary'];
    if (typeof binary !== 'string') throw new SecretBackendError('SECRET_NOT_FOUND', `${ref.raw}: the secret has no current value`, ref.raw);
    if (ref.field !== undefined) {
      throw new SecretBackendError('SECRET_NOT_FOUND', `${ref.raw}: the secret holds SecretBinary, which has no field '${ref.field}' (fields are read from a JSON SecretString)`, ref.raw);
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(binary, 'base64'));
    } catch {
      throw new SecretBackendError('SECRET_NOT_FOUND', `${ref.raw}: the secret holds SecretBinary that is not UTF-8 text`, ref.raw);
    }
  }
  if (ref.field === undefined) return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!isObject(parsed)) throw new SecretBackendError('SECRET_NOT_FOUND', `${ref.raw}: the SecretString is not a JSON object, so it has no field '${ref.field}'`, ref.raw);
  if (!Object.hasOwn(parsed, ref.field)) throw new SecretBackendError('SECRET_NOT_FOUND', `${ref.raw}: the secret has no field '${ref.field}'`, ref.raw);
  const v = parsed[ref.field];
  return typeof v === 'string' ? v : JSON.stringify(v);
}

interface AwsError {
  type: string;
  message: string;
}

/** A JSON-protocol error: `__type` (sometimes `<namespace>#<Type>`) and `message`, or the X-Amzn-ErrorType header. */
function jsonError(env: IntegrationEnvelope): AwsError {
  const body = isObject(env.body) ? env.body : {};
  const header = env.headers['x-amzn-errortype'];
  const raw = typeof body['__type'] === 'string' ? body['__type'] : typeof header === 'string' ? header.split(':')[0]! : '';
  const message = typeof body['message'] === 'string' ? body['message'] : typeof body['Message'] === 'string' ? body['Message'] : '';
  return { type: raw.slice(raw.lastIndexOf('#') + 1), message };
}

/** A Query-protocol (STS) error: `<ErrorResponse><Error><Code>…</Code><Message>…</Message></Error>`. */
function stsError(env: IntegrationEnvelope): AwsError {
  const text = env.text ?? '';
  return { type: xmlElement(text, 'Code') ?? '', message: xmlElement(text, 'Message') ?? '' };
}

const AUTH_ERRORS = new Set([
  'AccessDeniedException', 'AccessDenied', 'UnrecognizedClientException', 'InvalidSignatureException', 'SignatureDoesNotMatch',
  'IncompleteSignature', 'InvalidClientTokenId', 'ExpiredTokenException', 'ExpiredToken', 'MissingAuthenticationToken',
  'DecryptionFailure', 'RegionDisabledException',
]);
// InvalidRequestException: e.g. the secret is scheduled for deletion; InvalidParameterException: no such id can exist.
const NOT_FOUND_ERRORS = new Set(['ResourceNotFoundException', 'InvalidRequestException', 'InvalidParameterException']);

function failure(env: IntegrationEnvelope, reference: string | undefined, what: string, error: AwsError): SecretBackendError {
  const code: SecretBackendErrorCode =
    env.status >= 500 || error.type === 'InternalServiceError' || error.type === 'ThrottlingException'
      ? 'SECRET_BACKEND_UNREACHABLE'
      : AUTH_ERRORS.has(error.type) || env.status === 401 || env.status === 403
        ? 'SECRET_BACKEND_AUTH_FAILED'
        : NOT_FOUND_ERRORS.has(error.type)
          ? 'SECRET_NOT_FOUND'
          : 'SECRET_BACKEND_UNREACHABLE';
  const named = error.type !== '' ? ` ${error.type}` : '';
  const said = error.message !== '' ? `: ${error.message}` : '';
  return new SecretBackendError(code, `${prefix(reference)}${what} answered ${env.status}${named}${said}`, reference);
}

const prefix = (reference: string | undefined): string => (reference !== undefined ? `${reference}: ` : '');

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The text of the first `<name>` element of a small, known XML answer (STS's), entities decoded. A full XML parser
 * would be a dependency for five fixed elements that never nest in themselves.
 */
function xmlElement(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}(?:\\s[^>]*)?>([\\s\\S]*?)</${name}>`).exec(xml);
  if (!m) return undefined;
  return m[1]!.replace(/&(lt|gt|quot|apos|amp);/g, (_, e: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e]!);
}
