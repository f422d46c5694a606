import dgram from 'node:dgram';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createIntegrationClient, isEnvelope, type IntegrationClient } from '../../adapter/http';
import { createMemoryLogger } from '../support/memory-logger';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';

/** Waits until `lines` holds at least `n` entries (a real socket delivers asynchronously). */
async function atLeast(lines: string[], n: number): Promise<string[]> {
  for (let i = 0; i < 200 && lines.length < n; i++) await new Promise((r) => setTimeout(r, 5));
  return lines;
}

describe('per-integration syslog target (real UDP and TCP listeners on loopback)', () => {
  let api: LoopbackServer;
  let udp: dgram.Socket;
  let tcp: net.Server;
  const udpLines: string[] = [];
  const tcpLines: string[] = [];
  const tcpConnections: net.Socket[] = [];
  const clients: IntegrationClient[] = [];
  const mem = createMemoryLogger();
  const client = (syslog: Record<string, unknown>, level = 'info'): IntegrationClient => {
    const c = createIntegrationClient(
      {
        server: { host: '127.0.0.1', port: api.port },
        authentication: { type: 'bearer', token: 'syslog-secret-token' },
        logging: { level, syslog },
      },
      { logger: mem.logger, name: 'sys' },
    );
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    api = await startLoopbackServer((req, res) => sendJson(res, req.url === '/missing' ? 404 : 200, {}));
    udp = dgram.createSocket('udp4');
    udp.on('message', (m) => udpLines.push(m.toString('utf8')));
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    tcp = net.createServer((s) => {
      tcpConnections.push(s);
      let buf = '';
      s.on('data', (d: Buffer) => {
        buf += d.toString('utf8');
        // Non-transparent framing (RFC 6587 §3.4.2): one message per line.
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          tcpLines.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
    });
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    udp.close();
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
    await api.close();
  });

  test('UDP: RFC 5424 lines with facility and severity, secrets redacted', async () => {
    const c = client({ host: '127.0.0.1', port: (udp.address() as AddressInfo).port, facility: 'local3', app_name: 'provisio-test' }, 'debug');
    expect(isEnvelope(await c.call({ method: 'GET', path: '/ok' }))).toBe(true);
    const lines = await atLeast(udpLines, 3);
    // local3 (19) * 8 + info (6) = 158; debug (7) = 159.
    const response = lines.find((l) => l.includes('"integration response"'));
    expect(response).toMatch(/^<158>1 \d{4}-\d\d-\d\dT[\d:.]+Z \S+ provisio-test \d+ - - \{/);
    expect(JSON.parse(response!.slice(response!.indexOf('{')))).toMatchObject({ message: 'integration response', integration: 'sys', status: 200 });
    expect(lines.find((l) => l.includes('"integration request"'))).toMatch(/^<159>1 /);
    expect(lines.join('\n')).not.toContain('syslog-secret-token');
  });

  test('TCP, one message per line; the syslog level is set apart from the log level at run time', async () => {
    const c = client({ host: '127.0.0.1', port: (tcp.address() as AddressInfo).port, protocol: 'tcp4', level: 'warn' });
    await c.call({ method: 'GET', path: '/ok' });
    await c.call({ method: 'GET', path: '/missing' });
    const lines = await atLeast(tcpLines, 1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^<132>1 /); // local0 (16) * 8 + warning (4)
    expect(lines[0]).toContain('"status":404');

    c.setSyslogLevel('info');
    await c.call({ method: 'GET', path: '/ok' });
    expect((await atLeast(tcpLines, 2))[1]).toMatch(/^<134>1 .*"status":200/);
  });

  test('closing the integration ends its TCP syslog connection for good (winston-syslog would reconnect)', async () => {
    const before = tcpConnections.length;
    const c = client({ host: '127.0.0.1', port: (tcp.address() as AddressInfo).port, protocol: 'tcp4' });
    await c.call({ method: 'GET', path: '/ok' });
    await atLeast(tcpLines, tcpLines.length + 1);
    expect(tcpConnections.length).toBe(before + 1);
    const ended = new Promise<void>((resolve) => tcpConnections[before]!.once('end', resolve));
    c.close();
    await ended;
    // winston-syslog's own reconnect timer fires one second after a close.
    await new Promise((r) => setTimeout(r, 1_300));
    expect(tcpConnections.length).toBe(before + 1);
  });
});
