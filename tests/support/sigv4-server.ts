import { createHash, timingSafeEqual } from 'node:crypto';
import aws4 from 'aws4';
import { sendJson, startLoopbackServer, type LoopbackServer, type RecordedRequest } from './loopback-server';

/** What the verifier concluded about one request. */
export interface SigV4Verdict {
  verified: boolean;
  reason?: string;
  signedHeaders?: string[];
}

export interface SigV4Server extends LoopbackServer {
  verdicts: SigV4Verdict[];
}

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

/**
 * Checks one request's AWS Signature V4 with the independent `aws4` package: recomputes the signature from the signed
 * headers, method, path, query and body, and checks the payload hash header against the body. `keys` are the access
 * keys the server knows (a temporary key with its session token, which the request must carry).
 */
export function verifySigV4(
  req: RecordedRequest,
  opts: { region: string; service: string; keys: Record<string, { secret: string; sessionToken?: string }> },
): SigV4Verdict {
  const m = AUTH.exec(String(req.headers.authorization ?? ''));
  if (!m) return { verified: false, reason: 'no SigV4 Authorization header' };
  const [, accessKeyId, date, region, service, signedList, signature] = m as unknown as string[];
  const key = opts.keys[accessKeyId!];
  if (!key) return { verified: false, reason: 'unknown access key' };
  if (region !== opts.region || service !== opts.service) return { verified: false, reason: `wrong scope ${region}/${service}` };
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(date!)) return { verified: false, reason: 'x-amz-date does not match the credential scope' };
  const signedHeaders = signedList!.split(';');
  if (!signedHeaders.includes('host') || !signedHeaders.includes('x-amz-date')) return { verified: false, reason: 'host and x-amz-date must be signed' };
  if (key.sessionToken !== undefined && req.headers['x-amz-security-token'] !== key.sessionToken) return { verified: false, reason: 'wrong session token' };
  const declaredHash = req.headers['x-amz-content-sha256'];
  if (declaredHash !== undefined && declaredHash !== createHash('sha256').update(req.body).digest('hex')) {
    return { verified: false, reason: 'x-amz-content-sha256 does not match the body' };
  }
  const headers: Record<string, string> = {};
  for (const h of signedHeaders) headers[h] = String(req.headers[h] ?? '');
  const signer = new aws4.RequestSigner(
    { host: String(req.headers.host), method: req.method, path: req.url, headers, body: req.body, service, region, doNotModifyHeaders: true },
    { accessKeyId: accessKeyId!, secretAccessKey: key.secret, ...(key.sessionToken ? { sessionToken: key.sessionToken } : {}) },
  );
  signer.prepareRequest();
  signer.datetime = amzDate;
  const expected = Buffer.from(signer.signature(), 'hex');
  const given = Buffer.from(signature!, 'hex');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return { verified: false, reason: 'The request signature we calculated does not match the signature you provided.' };
  }
  return { verified: true, signedHeaders };
}

/**
 * A server that checks AWS Signature V4 with the independent `aws4` package (the client signs with
 * @smithy/signature-v4): it checks each request with {@link verifySigV4} and answers 200 {verified: true} or 403 with the reason.
 */
export async function startSigV4Server(opts: { region: string; service: string; keys: Record<string, { secret: string; sessionToken?: string }> }): Promise<SigV4Server> {
  const verdicts: SigV4Verdict[] = [];
  const server = await startLoopbackServer((req, res) => {
    const verdict = verifySigV4(req, opts);
    verdicts.push(verdict);
    if (!verdict.verified) return sendJson(res, 403, { message: verdict.reason });
    return sendJson(res, 200, { verified: true, method: req.method, url: req.url, body: req.body, signed_headers: verdict.signedHeaders });
  });
  return Object.assign(server, { verdicts });
}
