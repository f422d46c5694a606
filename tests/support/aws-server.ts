import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { startHttpsLoopbackServer } from './https-loopback';
import type { RecordedRequest } from './loopback-server';
import { verifySigV4 } from './sigv4-server';

/**
 * AWS Secrets Manager (API 2017-10-17, JSON 1.1 protocol: `GetSecretValue`, `CreateSecret`, `PutSecretValue`) and
 * STS (API 2011-06-15, Query protocol: `AssumeRole`) on two loopback HTTPS endpoints, as the AWS API references
 * describe them. Every request's SigV4 signature is verified for real with the `aws4` package (sigv4-server.ts),
 * against the service of each endpoint; temporary credentials issued by AssumeRole are accepted with their session
 * token until their Expiration, on the server's clock (`now`, injectable so a test controls expiry).
 */
export interface AwsServer {
  region: string;
  account: string;
  /** Secrets Manager's endpoint URL. */
  secretsManagerUrl: string;
  /** STS's endpoint URL. */
  stsUrl: string;
  /** PEM of the CA both endpoints' certificates chain to. */
  caPem: string;
  /** Adds an IAM user's long-term key; `denied`: Secrets Manager refuses it (AccessDeniedException). */
  addUser(accessKeyId: string, secretAccessKey: string, opts?: { denied?: boolean }): void;
  /** Adds a role that `trusted` keys may assume (with `externalId` when given); sessions last at most an hour. */
  addRole(arn: string, opts: { trusted: string[]; externalId?: string }): void;
  putSecret(name: string, value: { string: string } | { binary: Buffer }): void;
  secretValue(name: string): string | undefined;
  arnOf(name: string): string | undefined;
  /** Every AssumeRole answered, with the temporary key it issued. */
  issued: { accessKeyId: string; expiration: Date }[];
  /** Every Secrets Manager request: operation, the access key it was signed with, and the outcome. */
  calls: { operation: string; accessKeyId: string; status: number; error?: string }[];
  requests: RecordedRequest[];
  close(): Promise<void>;
}

// A role's MaxSessionDuration when not raised: one hour.
const MAX_SESSION_SECONDS = 3600;

interface Principal {
  secret: string;
  sessionToken?: string;
  expiresAt?: number;
  denied?: boolean;
  roleArn?: string;
}

export async function startAwsServer(opts: { region?: string; now?: () => number } = {}): Promise<AwsServer> {
  const region = opts.region ?? 'eu-central-1';
  const account = '123456789012';
  const now = opts.now ?? Date.now;
  const principals = new Map<string, Principal>();
  const roles = new Map<string, { trusted: Set<string>; externalId?: string }>();
  const secrets = new Map<string, { arn: string; string?: string; binary?: Buffer; version: string; created: number }>();
  const issued: AwsServer['issued'] = [];
  const calls: AwsServer['calls'] = [];
  const requests: RecordedRequest[] = [];

  /** The key a request was signed with, verified; or the AWS error type and message to answer. */
  function authenticate(req: RecordedRequest, service: string): { accessKeyId: string; principal: Principal } | { type: string; message: string } {
    const keys: Record<string, { secret: string; sessionToken?: string }> = {};
    for (const [id, p] of principals) keys[id] = { secret: p.secret, ...(p.sessionToken !== undefined ? { sessionToken: p.sessionToken } : {}) };
    const accessKeyId = /Credential=([^/]+)\//.exec(String(req.headers.authorization ?? ''))?.[1] ?? '';
    const principal = principals.get(accessKeyId);
    if (!principal) {
      return service === 'sts'
        ? { type: 'InvalidClientTokenId', message: 'The security token included in the request is invalid.' }
        : { type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' };
    }
    if (principal.expiresAt !== undefined && now() >= principal.expiresAt) {
      return { type: service === 'sts' ? 'ExpiredToken' : 'ExpiredTokenException', message: 'The security token included in the request is expired' };
    }
    const verdict = verifySigV4(req, { region, service, keys });
    if (!verdict.verified) {
      return service === 'sts'
        ? { type: 'SignatureDoesNotMatch', message: verdict.reason ?? 'signature' }
        : { type: 'InvalidSignatureException', message: verdict.reason ?? 'signature' };
    }
    return { accessKeyId, principal };
  }

  const sm = await startHttpsLoopbackServer((req, res) => {
    requests.push(req);
    const operation = String(req.headers['x-amz-target'] ?? '').replace(/^secretsmanager\./, '');
    const fail = (status: number, type: string, message: string, accessKeyId = '') => {
      calls.push({ operation, accessKeyId, status, error: type });
      sendAws(res, status, { __type: type, message }, { 'x-amzn-errortype': type });
    };
    if (req.method !== 'POST' || req.url !== '/') return fail(404, 'UnknownOperationException', `${req.method} ${req.url}`);
    if (!String(req.headers['content-type'] ?? '').startsWith('application/x-amz-json-1.1')) {
      return fail(400, 'SerializationException', 'Content-Type must be application/x-amz-json-1.1');
    }
    const auth = authenticate(req, 'secretsmanager');
    if ('type' in auth) return fail(400, auth.type, auth.message);
    const who = auth.accessKeyId;
    if (auth.principal.denied) {
      return fail(400, 'AccessDeniedException', `User: arn:aws:iam::${account}:user/${who} is not authorized to perform: secretsmanager:${operation}`, who);
    }
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(req.body) as Record<string, unknown>;
    } catch {
      return fail(400, 'SerializationException', 'the body is not JSON', who);
    }
    const ok = (body: Record<string, unknown>) => {
      calls.push({ operation, accessKeyId: who, status: 200 });
      sendAws(res, 200, body);
    };
    const find = (id: unknown) => (typeof id === 'string' ? (secrets.get(id) ?? [...secrets.values()].find((s) => s.arn === id)) : undefined);
    const notFound = () => fail(400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.", who);
    switch (operation) {
      case 'GetSecretValue': {
        const s = find(input['SecretId']);
        if (!s) return notFound();
        const name = [...secrets].find(([, v]) => v === s)![0];
        return ok({
          ARN: s.arn,
          Name: name,
          VersionId: s.version,
          ...(s.string !== undefined ? { SecretString: s.string } : { SecretBinary: s.binary!.toString('base64') }),
          VersionStages: ['AWSCURRENT'],
          CreatedDate: s.created / 1000,
        });
      }
      case 'CreateSecret': {
        const name = input['Name'];
        if (typeof name !== 'string' || !/^[A-Za-z0-9/_+=.@-]{1,512}$/.test(name)) return fail(400, 'InvalidParameterException', 'Invalid name', who);
        if (typeof input['ClientRequestToken'] !== 'string' || input['ClientRequestToken'].length < 32) {
          return fail(400, 'InvalidParameterException', 'ClientRequestToken must be 32-64 characters', who);
        }
        if (secrets.has(name)) return fail(400, 'ResourceExistsException', `The operation failed because the secret ${name} already exists.`, who);
        if (typeof input['SecretString'] !== 'string') return fail(400, 'InvalidParameterException', 'SecretString is required here', who);
        const created = store(name, { string: input['SecretString'] });
        return ok({ ARN: created.arn, Name: name, VersionId: created.version });
      }
      case 'PutSecretValue': {
        const s = find(input['SecretId']);
        if (!s) return notFound();
        if (typeof input['SecretString'] !== 'string') return fail(400, 'InvalidParameterException', 'SecretString is required here', who);
        s.string = input['SecretString'];
        delete s.binary;
        s.version = randomBytes(16).toString('hex');
        return ok({ ARN: s.arn, Name: input['SecretId'], VersionId: s.version, VersionStages: ['AWSCURRENT'] });
      }
      default:
        return fail(400, 'UnknownOperationException', `unknown operation ${operation}`, who);
    }
  });

  const sts = await startHttpsLoopbackServer((req, res) => {
    requests.push(req);
    const fail = (status: number, code: string, message: string) =>
      sendXml(
        res,
        status,
        `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code>` +
          `<Message>${escapeXml(message)}</Message></Error><RequestId>${randomBytes(8).toString('hex')}</RequestId></ErrorResponse>`,
      );
    if (req.method !== 'POST') return fail(400, 'InvalidAction', 'POST a form');
    const auth = authenticate(req, 'sts');
    if ('type' in auth) return fail(403, auth.type, auth.message);
    const form = new URLSearchParams(req.body);
    if (form.get('Action') !== 'AssumeRole' || form.get('Version') !== '2011-06-15') return fail(400, 'InvalidAction', 'Could not find operation');
    const arn = form.get('RoleArn') ?? '';
    const role = roles.get(arn);
    const sessionName = form.get('RoleSessionName') ?? '';
    if (!/^[\w+=,.@-]{2,64}$/.test(sessionName)) return fail(400, 'ValidationError', 'RoleSessionName is invalid');
    if (!role || !role.trusted.has(auth.accessKeyId) || (role.externalId !== undefined && form.get('ExternalId') !== role.externalId)) {
      return fail(403, 'AccessDenied', `User: arn:aws:iam::${account}:user/${auth.accessKeyId} is not authorized to perform: sts:AssumeRole on resource: ${arn}`);
    }
    const seconds = Number(form.get('DurationSeconds') ?? 3600);
    if (!Number.isInteger(seconds) || seconds < 900 || seconds > MAX_SESSION_SECONDS) {
      return fail(400, 'ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
    }
    const accessKeyId = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
    const secret = randomBytes(30).toString('base64');
    const sessionToken = randomBytes(48).toString('base64');
    const expiration = new Date(Math.floor((now() + seconds * 1000) / 1000) * 1000);
    principals.set(accessKeyId, { secret, sessionToken, expiresAt: expiration.getTime(), roleArn: arn });
    issued.push({ accessKeyId, expiration });
    const roleName = arn.slice(arn.lastIndexOf('/') + 1);
    sendXml(
      res,
      200,
      `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <SourceIdentity></SourceIdentity>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::${account}:assumed-role/${escapeXml(roleName)}/${escapeXml(sessionName)}</Arn>
      <AssumedRoleId>AROA${randomBytes(8).toString('hex').toUpperCase()}:${escapeXml(sessionName)}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>${accessKeyId}</AccessKeyId>
      <SecretAccessKey>${escapeXml(secret)}</SecretAccessKey>
      <SessionToken>${escapeXml(sessionToken)}</SessionToken>
      <Expiration>${expiration.toISOString().replace(/\.\d{3}Z$/, 'Z')}</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>${randomBytes(8).toString('hex')}</RequestId></ResponseMetadata>
</AssumeRoleResponse>`,
    );
  });

  function store(name: string, value: { string: string } | { binary: Buffer }) {
    const entry = {
      arn: `arn:aws:secretsmanager:${region}:${account}:secret:${name}-${randomBytes(3).toString('hex').slice(0, 6)}`,
      ...('string' in value ? { string: value.string } : { binary: value.binary }),
      version: randomBytes(16).toString('hex'),
      created: now(),
    };
    secrets.set(name, entry);
    return entry;
  }

  return {
    region,
    account,
    secretsManagerUrl: sm.url,
    stsUrl: sts.url,
    caPem: `${sm.serverCa.certPem}${sts.serverCa.certPem}`,
    addUser: (id, secret, o = {}) => principals.set(id, { secret, ...(o.denied ? { denied: true } : {}) }),
    addRole: (arn, o) => roles.set(arn, { trusted: new Set(o.trusted), ...(o.externalId !== undefined ? { externalId: o.externalId } : {}) }),
    putSecret: (name, value) => void store(name, value),
    secretValue: (name) => secrets.get(name)?.string,
    arnOf: (name) => secrets.get(name)?.arn,
    issued,
    calls,
    requests,
    close: async () => {
      await Promise.all([sm.close(), sts.close()]);
    },
  };
}

function sendAws(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': randomBytes(8).toString('hex'), ...headers });
  res.end(text);
}

function sendXml(res: http.ServerResponse, status: number, xml: string): void {
  res.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(xml) });
  res.end(xml);
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}
