// A loopback HTTPS server that accepts only SPNEGO (HTTP Negotiate) tokens, verified with the `kerberos` addon's
// GSS acceptor against the keytab in KRB5_KTNAME; started by spnego-server.ts in its own process because libkrb5
// reads KRB5_KTNAME and KRB5_CONFIG from the real environment, which a jest test file cannot set for itself.
// It answers a few AdminService routes (ConfigMgr's REST API) once a token verifies, with the acceptor's
// mutual-authentication token in `WWW-Authenticate: Negotiate <token>`, and 401 `WWW-Authenticate: Negotiate` to
// anything else. Env:
//   SPNEGO_SERVICE  host-based acceptor name, e.g. HTTP@sccm.test.local
//   SPNEGO_MECHS    accepted token mechanisms, comma separated: spnego (default), krb5
//   SPNEGO_MUTUAL   valid (default) | tampered (one byte of the server's token changed) | omit
//   TLS_CERT, TLS_KEY  PEM
//   SPNEGO_UPSTREAM  optional http://127.0.0.1:<port>: requests under SPNEGO_UPSTREAM_PATHS (comma separated prefixes,
//                    default /wsman) are, once their token verified, forwarded there with `x-authenticated-user` and
//                    `x-authenticated-mech`, and the upstream's answer is relayed (with the mutual-authentication
//                    token): how a handler written in the test process (the WS-Man listener) sits behind Kerberos.
// Prints {"port": N} when ready. GET /__events (no authentication) answers what the server saw, in order.
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import { exitWithParent } from './exit-with-parent.mjs';

const require = createRequire(import.meta.url);
const kerberos = require('kerberos');

const service = process.env.SPNEGO_SERVICE;
const mechs = (process.env.SPNEGO_MECHS || 'spnego').split(',');
const mutual = process.env.SPNEGO_MUTUAL || 'valid';
const events = [];
const upstream = process.env.SPNEGO_UPSTREAM || '';
const upstreamPaths = (process.env.SPNEGO_UPSTREAM_PATHS || '/wsman').split(',');

// DER of the mechanism OIDs a GSS initial-context token names (RFC 2743 3.1): SPNEGO 1.3.6.1.5.5.2, Kerberos 5
// 1.2.840.113554.1.2.2. NTLM messages start with their own signature instead.
const OIDS = { spnego: '2b0601050502', krb5: '2a864886f712010202' };

function mechOf(token) {
  const b = Buffer.from(token, 'base64');
  if (b.subarray(0, 8).toString('latin1') === 'NTLMSSP\0') return 'ntlm';
  if (b[0] !== 0x60) return 'unknown';
  let i = 2;
  if (b[1] & 0x80) i += b[1] & 0x7f;
  if (b[i] !== 0x06) return 'unknown';
  const oid = b.subarray(i + 2, i + 2 + b[i + 1]).toString('hex');
  return Object.keys(OIDS).find((k) => OIDS[k] === oid) ?? 'unknown';
}

function tamper(token) {
  const b = Buffer.from(token, 'base64');
  // A byte near the end lies in the encrypted part of the AP-REP (or the MIC after it): the structure stays readable,
  // the integrity check fails.
  b[b.length - 6] ^= 0x55;
  return b.toString('base64');
}

const system = { __CLASS: 'SMS_R_System', ResourceId: 16777220, Name: 'VDI-JDOE-01', NetbiosName: 'VDI-JDOE-01', Client: 1 };
const odata = (set, value) => ({ '@odata.context': `https://sccm.test.local/AdminService/wmi/$metadata#${set}`, value });

function route(method, url, body) {
  const u = new URL(url, 'https://x');
  const path = decodeURIComponent(u.pathname);
  if (method === 'GET' && path === '/AdminService/wmi/SMS_R_System') {
    const filter = u.searchParams.get('$filter');
    // Any one device by name is known (the same resource id); no filter lists the one device.
    const named = filter === null ? undefined : /^Name eq '([^']+)'$/.exec(filter)?.[1];
    return [200, odata('SMS_R_System', filter === null ? [system] : named ? [{ ...system, Name: named, NetbiosName: named.split('.')[0].toUpperCase() }] : [])];
  }
  if (method === 'GET' && path === '/AdminService/wmi/SMS_R_System(16777220)') return [200, odata('SMS_R_System', [system])];
  if (method === 'GET' && path === '/AdminService/v1.0/Device') return [200, odata('Device', [{ MachineId: 16777220, Name: 'VDI-JDOE-01' }])];
  if (method === 'POST' && path === '/AdminService/wmi/SMS_Site.ImportMachineEntry') {
    return [200, { ReturnValue: 0, ResourceID: 16777230, MachineExists: false, echo: body === '' ? null : JSON.parse(body) }];
  }
  const rule = /^\/AdminService\/wmi\/SMS_Collection\('([^']+)'\)\/AdminService\.(Add|Delete)MembershipRule$/.exec(path);
  if (method === 'POST' && rule) return [200, { ReturnValue: 0, CollectionID: rule[1], echo: body === '' ? null : JSON.parse(body) }];
  if (method === 'GET' && path === '/AdminService/wmi/SMS_ClassicDeploymentAssetDetails') {
    return [200, odata('SMS_ClassicDeploymentAssetDetails', [{ DeploymentID: 'PS120034', DeviceName: 'VDI-JDOE-01', StatusType: 1, StatusDescription: 'Success' }])];
  }
  return [404, { error: { code: '404', message: `no route ${method} ${path}` } }];
}

function forward(req, body, user, mech) {
  return new Promise((resolve, reject) => {
    const headers = { 'x-authenticated-user': user, 'x-authenticated-mech': mech, 'content-length': Buffer.byteLength(body) };
    if (req.headers['content-type']) headers['content-type'] = req.headers['content-type'];
    const out = http.request(`${upstream}${req.url}`, { method: req.method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const kept = {};
        if (res.headers['content-type']) kept['content-type'] = res.headers['content-type'];
        resolve({ status: res.statusCode ?? 502, headers: kept, body: Buffer.concat(chunks) });
      });
    });
    out.on('error', reject);
    out.end(body);
  });
}

function challenge(res, reason, detail) {
  events.push({ kind: 'refused', reason, ...(detail ? { detail } : {}) });
  res.writeHead(401, { 'www-authenticate': 'Negotiate', 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { code: '401', message: 'Unauthorized' } }));
}

async function handle(req, res, body) {
  if (req.url === '/__events') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(events));
  }
  const m = /^Negotiate\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return challenge(res, req.headers.authorization ? 'not negotiate' : 'no authorization');
  const mech = mechOf(m[1]);
  if (!mechs.includes(mech)) return challenge(res, `mechanism ${mech} not accepted`);
  let server;
  try {
    server = await kerberos.initializeServer(service);
    await server.step(m[1]);
  } catch (e) {
    return challenge(res, 'token not accepted', e instanceof Error ? e.message : String(e));
  }
  if (!server.contextComplete) return challenge(res, 'context not complete');
  const mutualHeader = mutual !== 'omit' && server.response ? `Negotiate ${mutual === 'tampered' ? tamper(server.response) : server.response}` : undefined;
  if (upstream && upstreamPaths.some((p) => req.url.startsWith(p))) {
    const answer = await forward(req, body, server.username, mech);
    events.push({ kind: 'accepted', user: server.username, mech, method: req.method, url: req.url, remotePort: req.socket.remotePort, hadBody: body !== '', status: answer.status });
    const headers = { ...answer.headers, 'x-authenticated-user': server.username };
    if (mutualHeader) headers['www-authenticate'] = mutualHeader;
    res.writeHead(answer.status, headers);
    return res.end(answer.body);
  }
  const [status, payload] = route(req.method, req.url, body);
  events.push({ kind: 'accepted', user: server.username, mech, method: req.method, url: req.url, remotePort: req.socket.remotePort, hadBody: body !== '' });
  const headers = { 'content-type': 'application/json', 'x-authenticated-user': server.username };
  if (mutualHeader) headers['www-authenticate'] = mutualHeader;
  res.writeHead(status, headers);
  res.end(JSON.stringify(payload));
}

const server = https.createServer({ cert: process.env.TLS_CERT, key: process.env.TLS_KEY }, (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((e) => {
      res.writeHead(500);
      res.end(String(e));
    });
  });
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);

// Exit with the test process even when it dies without stopping us.
exitWithParent();
process.on('SIGTERM', () => process.exit(0));
