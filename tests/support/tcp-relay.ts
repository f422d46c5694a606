// A loopback TCP relay to a local port that counts connections and keeps the bytes the server sent, so a test
// can tell whether a session's traffic is sealed (a looked-up value must not appear in them) or in clear.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpRelay {
  port: number;
  connections: number;
  fromServer: Buffer[];
  server: Server;
  sockets: Socket[];
}

/** Starts a relay 127.0.0.1:<ephemeral> -> 127.0.0.1:<target>. */
export async function startTcpRelay(target: number): Promise<TcpRelay> {
  const r: TcpRelay = { port: 0, connections: 0, fromServer: [], server: createServer(), sockets: [] };
  r.server.on('connection', (client) => {
    r.connections += 1;
    const upstream = connect(target, '127.0.0.1');
    r.sockets.push(client, upstream);
    upstream.on('data', (b: Buffer) => r.fromServer.push(Buffer.from(b)));
    client.pipe(upstream);
    upstream.pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  await new Promise<void>((res) => r.server.listen(0, '127.0.0.1', res));
  r.port = (r.server.address() as { port: number }).port;
  return r;
}

/** Forgets the counts and bytes so far. */
export function resetTcpRelay(r: TcpRelay): void {
  r.connections = 0;
  r.fromServer = [];
}

/** Closes the relay and every connection through it. */
export async function closeTcpRelay(r: TcpRelay): Promise<void> {
  for (const s of r.sockets) s.destroy();
  await new Promise<void>((res) => r.server.close(() => res()));
}
