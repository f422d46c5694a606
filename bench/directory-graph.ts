// The Entra ID part of `npm run bench:directory`: requester lookups (user, manager, nested groups) through the
// Directory interface over Microsoft Graph, beside the same Graph requests made with a bare
// @microsoft/microsoft-graph-client (same token provider and transport, no mapping, no error translation), both
// against the loopback HTTPS Graph of tests/support/graph-server.ts in the same run. Target: >= 80 %.
// The bare side makes the requests the directory makes for those three questions (each method looks its user up
// itself), so the ratio is the interface's own cost, not a difference in round trips.
import { AuthenticationHandler, Client } from '@microsoft/microsoft-graph-client';
import { ClientCredentialsProvider, createGraphDirectory } from '../adapter';
import { graphTransport } from '../adapter/directory/graph';
import { startGraphServer } from '../tests/support/graph-server';

const N = Number(process.env['BENCH_GRAPH_LOOKUPS'] ?? 1000);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 8);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const MAILS = ['u0@contoso.test', 'u1@contoso.test', 'u2@contoso.test', 'u3@contoso.test', 'u4@contoso.test'];

async function rate(one: (mail: string) => Promise<void>): Promise<number> {
  let started = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (started < N) await one(MAILS[started++ % MAILS.length]!);
    }),
  );
  return N / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** Runs the Graph comparison; true when the directory reaches >= 80 % of the bare client's rate. */
export async function benchGraph(): Promise<boolean> {
  const g = await startGraphServer({
    users: [{ userPrincipalName: 'boss@contoso.test', mail: 'boss@contoso.test' }, ...MAILS.map((m) => ({ userPrincipalName: m, mail: m, department: 'Ops', manager: 'boss@contoso.test' }))],
    groups: [
      { displayName: 'Inner', members: MAILS },
      { displayName: 'Outer', members: ['Inner'] },
    ],
  });
  g.pageSize = 100;
  try {
    const settings = { tenantId: g.tenantId, clientId: g.clientId, clientSecret: g.clientSecret, authorityHost: g.url, graphBaseUrl: g.graphBaseUrl, caCertPem: g.caPem };
    const d = createGraphDirectory(settings);
    const viaDirectory = async (mail: string) => {
      const key = { by: 'mail', value: mail } as const;
      await Promise.all([d.findUser(key), d.findManager(key), d.listGroups(key, { nested: true })]);
    };
    const https = { caCertPem: g.caPem, timeoutMs: 15_000 };
    const tokens = new ClientCredentialsProvider({ authorityHost: g.url, tenantId: g.tenantId, clientId: g.clientId, clientSecret: g.clientSecret, scope: `${g.url}/.default` }, https);
    const auth = new AuthenticationHandler(tokens);
    auth.setNext(graphTransport(https, { maxRetries: 3, maxDelayMs: 30_000 }));
    const bare = Client.initWithMiddleware({ middleware: auth, baseUrl: g.url, defaultVersion: 'v1.0', customHosts: new Set(['127.0.0.1']) });
    const select = 'id,userPrincipalName,mail,mailNickname,displayName,accountEnabled,department,companyName,employeeId,jobTitle,employeeOrgData';
    const user = async (mail: string) => ((await bare.api('/users').filter(`mail eq '${mail}'`).select(select).top(2).get()) as { value: { id: string }[] }).value[0]!.id;
    const viaBare = async (mail: string) => {
      await Promise.all([
        user(mail),
        user(mail).then((id) => bare.api(`/users/${id}/manager`).select(select).get()),
        user(mail).then((id) =>
          Promise.all([
            bare.api(`/users/${id}/memberOf/microsoft.graph.group`).select('id,displayName,mailNickname').top(999).get(),
            bare.api(`/users/${id}/transitiveMemberOf/microsoft.graph.group`).select('id,displayName,mailNickname').top(999).get(),
          ]),
        ),
      ]);
    };
    const groups = await d.listGroups({ by: 'mail', value: MAILS[0]! });
    if (groups.length !== 2) throw new Error(`unexpected groups: ${JSON.stringify(groups)}`);
    await rate(viaDirectory);
    await rate(viaBare);
    console.log(`bench:directory (Entra ID) — ${N} lookups (user + manager + nested groups) x ${ROUNDS} rounds, ${CONCURRENCY} concurrent, loopback HTTPS Graph`);
    const ratios: number[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      const [a, b] = r % 2 ? [await rate(viaDirectory), await rate(viaBare)] : [0, 0];
      const [dr, br] = r % 2 ? [a, b] : await (async () => { const y = await rate(viaBare); const x = await rate(viaDirectory); return [x, y]; })();
      ratios.push(dr! / br!);
      console.log(`round ${r}: directory ${dr!.toFixed(0).padStart(6)} lookups/s   |   bare graph client ${br!.toFixed(0).padStart(6)} lookups/s   |   ${((dr! / br!) * 100).toFixed(0)} %`);
    }
    const ratio = [...ratios].sort((x, y) => x - y)[Math.floor(ratios.length / 2)]!;
    console.log(`graph directory / bare client (median of rounds) = ${(ratio * 100).toFixed(0)} % (target >= 80 %): ${ratio >= 0.8 ? 'PASS' : 'FAIL'}`);
    return ratio >= 0.8;
  } finally {
    await g.close();
  }
}

if (require.main === module) {
  benchGraph().then(
    (ok) => (process.exitCode = ok ? 0 : 1),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
