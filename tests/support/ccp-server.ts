import type http from 'node:http';
import { clientCertificateCn, startHttpsLoopbackServer } from './https-loopback';
import type { RecordedRequest } from './loopback-server';
import { createCa, issueClientCert, type Issued } from './pki';

/**
 * CyberArk's Central Credential Provider web service (the REST GetPassword call of the AIM web service) on a loopback
 * HTTPS endpoint: `GET /AIMWebService/api/Accounts?AppID=&Safe=&Object=` answers the account as JSON (`Content`,
 * `UserName`, `Address`, `Safe`, `Folder`, `Name`, …) or `{ErrorCode, ErrorMsg}`. The TLS handshake demands a client
 * certificate issued by the server's client CA and refuses others (and none), as IIS "require client certificates"
 * does in front of a CCP; an application is then authenticated by its certificate's common name (CCP's "certificate
 * serial number / subject" application authentication), else APPAP306E.
 */
export interface CcpServer {
  url: string;
  /** PEM of the CA of the server's certificate (`ccp_ca_cert_pem`). */
  caPem: string;
  /** The CA that issues accepted client certificates. */
  clientCa: Issued;
  /** A client certificate (with key) issued by `clientCa` for `cn`. */
  issueClient(cn: string): Issued;
  /** Allows the application `appId` to applications presenting a certificate for `cn`. */
  addApplication(appId: string, cn: string): void;
  addAccount(safe: string, object: string, content: string, userName?: string): void;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startCcpServer(): Promise<CcpServer> {
  const clientCa = createCa('Test CCP Client CA');
  const apps = new Map<string, string>();
  const accounts = new Map<string, { content: string; userName: string }>();
  const server = await startHttpsLoopbackServer(
    (req, res, raw) => {
      const url = new URL(req.url, 'https://ccp.invalid');
      if (req.method !== 'GET' || url.pathname.toLowerCase() !== '/aimwebservice/api/accounts') {
        return send(res, 404, { ErrorCode: 'AIMWS001E', ErrorMsg: 'The requested resource was not found' });
      }
      // CCP reads its query parameters without regard to case.
      const param = (name: string) => [...url.searchParams].find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
      const appId = param('AppID');
      const safe = param('Safe');
      const object = param('Object');
      if (!appId) return send(res, 400, { ErrorCode: 'AIMWS030E', ErrorMsg: 'Invalid query format. The AppID parameter is required.' });
      const cn = clientCertificateCn(raw);
      if (apps.get(appId) !== cn) {
        return send(res, 403, {
          ErrorCode: 'APPAP306E',
          ErrorMsg: `Failed to verify application authentication data: the client certificate does not authenticate application [${appId}]`,
        });
      }
      const account = safe !== undefined && object !== undefined ? accounts.get(`${safe}\u0000${object}`) : undefined;
      if (!account) {
        return send(res, 404, {
          ErrorCode: 'APPAP004E',
          ErrorMsg:
            `Password object matching query [Safe=${safe ?? ''};Object=${object ?? ''}] was not found (Diagnostic Info: 5). Please check that there is a ` +
            'password object that answers your query in the Vault and that both the Provider and the application user have the appropriate permissions needed in order to use the password.',
        });
      }
      return send(res, 200, {
        Content: account.content,
        UserName: account.userName,
        Address: 'ccp.test',
        Safe: safe,
        Folder: 'Root',
        Name: object,
        PolicyID: 'WinDomain',
        PasswordChangeInProcess: 'False',
        CreationMethod: 'PVWA',
      });
    },
    { clientCa },
  );
  return {
    url: server.url,
    caPem: server.serverCa.certPem,
    clientCa,
    issueClient: (cn) => issueClientCert(clientCa, cn),
    addApplication: (appId, cn) => void apps.set(appId, cn),
    addAccount: (safe, object, content, userName = 'svc') => void accounts.set(`${safe}\u0000${object}`, { content, userName }),
    requests: server.requests,
    close: () => server.close(),
  };
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
