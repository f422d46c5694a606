/**
 * CyberArk Central Credential Provider (CCP, the AIM web service's REST interface) as a secret backend:
 * `ccp://[<safe>/]<object>` is `GET <ccp_url>/AIMWebService/api/Accounts?AppID=<app>&Safe=<safe>&Object=<object>`
 * over TLS with a client certificate (CCP's certificate authentication of the application), answered by the
 * account's `Content` (its password). A reference without a safe uses `ccp_default_safe`.
 *
 * Settings keys (section `secret_backend`): `ccp_url` (the web service's base URL), `ccp_app_id`, `ccp_default_safe`,
 * `ccp_client_cert_pem`, `ccp_client_key_pem` (write-only), `ccp_ca_cert_pem` (the CA of the CCP's server certificate).
 *
 * CCP only hands out credentials: it has no `write`, so it cannot be the target of the migration.
 */
import { CallNotMadeError, pemToDataUrl, type IntegrationConfigInput } from '../../http';
import { SecretBackendError, type SecretBackend, type SecretBackendErrorCode, type SecretBackendSettings, type SecretReference } from '../backend';
import { BackendClients, serverOf, type BackendHttpDeps } from './client-cache';
import { stringSetting } from './http';

export interface CyberArkCcpBackend extends SecretBackend {
  /** Closes kept-alive connections. */
  close(): void;
}

const ACCOUNTS_PATH = '/AIMWebService/api/Accounts';

export function createCyberArkCcpBackend(deps: BackendHttpDeps = {}): CyberArkCcpBackend {
  const clients = new BackendClients('secret-backend:ccp', deps);

  return {
    scheme: 'ccp',

    async read(ref: SecretReference, settings: SecretBackendSettings): Promise<string> {
      const get = (k: string) => stringSetting(settings, k);
      const base = get('ccp_url');
      const appId = get('ccp_app_id');
      const slash = ref.path.indexOf('/');
      const safe = slash >= 0 ? ref.path.slice(0, slash) : get('ccp_default_safe');
      const object = slash >= 0 ? ref.path.slice(slash + 1) : ref.path;
      const missing = [
        ...(base ? [] : ['ccp_url']),
        ...(appId ? [] : ['ccp_app_id']),
        ...(safe ? [] : ['ccp_default_safe (the reference names no safe)']),
      ];
      if (missing.length > 0) {
        throw new SecretBackendError('SECRET_BACKEND_NOT_CONFIGURED', `${ref.raw}: CyberArk CCP needs secret_backend.${missing.join(', secret_backend.')}`, ref.raw);
      }
      let url: URL;
      try {
        url = new URL(base!);
        if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError('not http(s)');
      } catch {
        throw new SecretBackendError('SECRET_BACKEND_NOT_CONFIGURED', `${ref.raw}: secret_backend.ccp_url is not an http(s) URL`, ref.raw);
      }
      const cert = get('ccp_client_cert_pem');
      const key = get('ccp_client_key_pem');
      const ca = get('ccp_ca_cert_pem');
      const withCertificate = cert !== undefined && key !== undefined;
      const config: IntegrationConfigInput = {
        server: serverOf(url),
        ...(withCertificate || ca !== undefined
          ? {
              mtls: {
                ...(withCertificate ? { cert: pemToDataUrl(cert), key: pemToDataUrl(key) } : {}),
                ...(ca !== undefined ? { ca: pemToDataUrl(ca) } : {}),
              },
            }
          : {}),
      };
      const out = await clients.clientFor(config).send({
        method: 'GET',
        path: ACCOUNTS_PATH,
        query: { AppID: appId!, Safe: safe!, Object: object },
      });
      if (out instanceof CallNotMadeError) {
        // CCP refuses an application without an acceptable certificate at the TLS handshake (IIS "require client
        // certificates"), which arrives as a TLS failure or a bare hang-up: say which half is missing.
        const hint = withCertificate
          ? ''
          : ' (no client certificate is configured: CCP authenticates the application by one; set secret_backend.ccp_client_cert_pem and ccp_client_key_pem)';
        throw new SecretBackendError('SECRET_BACKEND_UNREACHABLE', `${ref.raw}: CyberArk CCP at ${url.origin} could not be asked${hint}: ${out.message}`, ref.raw);
      }
      const body = out.body !== null && typeof out.body === 'object' && !Array.isArray(out.body) ? (out.body as Record<string, unknown>) : {};
      if (out.ok) {
        const content = body['Content'];
        if (typeof content !== 'string') {
          throw new SecretBackendError('SECRET_NOT_FOUND', `${ref.raw}: CyberArk CCP answered ${out.status} without a Content`, ref.raw);
        }
        return content;
      }
      const errorCode = typeof body['ErrorCode'] === 'string' ? body['ErrorCode'] : '';
      const errorMsg = typeof body['ErrorMsg'] === 'string' ? body['ErrorMsg'] : '';
      const code: SecretBackendErrorCode =
        out.status === 404 || errorCode === 'APPAP004E'
          ? 'SECRET_NOT_FOUND'
          : out.status === 401 || out.status === 403
            ? 'SECRET_BACKEND_AUTH_FAILED'
            : 'SECRET_BACKEND_UNREACHABLE';
      const named = errorCode !== '' ? ` ${errorCode}` : '';
      const said = errorMsg !== '' ? `: ${errorMsg}` : '';
      throw new SecretBackendError(code, `${ref.raw}: CyberArk CCP answered ${out.status}${named}${said}`, ref.raw);
    },

    close: () => clients.close(),
  };
}
