import type { InternalAxiosRequestConfig } from 'axios';
import type { AuthenticationConfig } from '../config';
import type { AuthContext, AuthProvider } from './types';

/**
 * AWS Signature Version 4. The body and query are fixed here (serialised before signing) because the signature
 * covers them: axios must not re-serialise either after this runs.
 */
export function createSigV4Auth(auth: Extract<AuthenticationConfig, { type: 'aws_sigv4' }>, ctx: AuthContext): AuthProvider {
  // Required when an integration signs, not at every start (the AWS SDK's modules are slow to load).
  const { Sha256 } = require('@aws-crypto/sha256-js') as typeof import('@aws-crypto/sha256-js');
  const { SignatureV4 } = require('@smithy/signature-v4') as typeof import('@smithy/signature-v4');
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: auth.access_key_id,
      secretAccessKey: auth.secret_access_key,
      ...(auth.session_token ? { sessionToken: auth.session_token } : {}),
    },
    region: auth.region,
    service: auth.service,
    sha256: Sha256,
  });
  ctx.addSecret(auth.secret_access_key);
  if (auth.session_token) ctx.addSecret(auth.session_token);

  return {
    apply: async (config) => {
      const url = new URL(ctx.fullUrl(config));
      const body = serialiseBody(config);
      const query: Record<string, string | string[]> = {};
      for (const [k, v] of url.searchParams) {
        const prev = query[k];
        query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
      }
      const headers: Record<string, string> = { host: url.host };
      const contentType = config.headers.getContentType();
      if (body !== undefined && typeof contentType === 'string') headers['content-type'] = contentType;
      // AWS's JSON protocols name the operation in X-Amz-Target: signed like the SDKs sign it, so nothing on the way
      // can turn a read into another operation under the same signature.
      for (const [k, v] of Object.entries(config.headers.toJSON())) {
        const name = k.toLowerCase();
        if (name.startsWith('x-amz-') && !SIGNER_SET.has(name) && typeof v === 'string') headers[name] = v;
      }
      const signed = await signer.sign(
        {
          method: (config.method ?? 'get').toUpperCase(),
          protocol: url.protocol,
          hostname: url.hostname,
          ...(url.port ? { port: Number(url.port) } : {}),
          path: url.pathname,
          query,
          headers,
          ...(body !== undefined ? { body } : {}),
        },
        { signingDate: new Date(ctx.now()) },
      );
      for (const [k, v] of Object.entries(signed.headers)) config.headers.set(k, v);
      // The query is now part of the signed URL; axios must send it exactly as signed.
      config.url = url.toString();
      config.params = undefined;
      config.baseURL = undefined;
      if (body !== undefined) config.data = body;
    },
  };
}

// Headers the signer sets itself; a stale copy on the request must not be signed instead.
const SIGNER_SET = new Set(['x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256']);

function serialiseBody(config: InternalAxiosRequestConfig): string | Buffer | undefined {
  const data: unknown = config.data;
  if (data === undefined || data === null) return undefined;
  if (typeof data === 'string' || Buffer.isBuffer(data)) return data;
  if (data instanceof URLSearchParams) {
    if (!config.headers.getContentType()) config.headers.setContentType('application/x-www-form-urlencoded');
    return data.toString();
  }
  if (!config.headers.getContentType()) config.headers.setContentType('application/json');
  return JSON.stringify(data);
}
