// npm run bench:secrets — what a secret reference costs beside a plain value (issue 15).
// On PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test; a throwaway database beside it), the
// secrets sealed under a random master key as in production, the backends the loopback HTTPS servers of the tests
// (tests/support: Vault, Conjur, Azure Key Vault with its token endpoint, AWS Secrets Manager with STS and SigV4
// verified by aws4, CyberArk CCP demanding a client certificate).
//   (a) warm reads: a settings secret read BENCH_READS times (default 10,000) through the service's read path
//       (`readSetting`: the row, its AES-GCM opening, the reference resolved), once holding a plain value
//       (smtp.password) and once holding a reference (active_directory.bind_password = vault://…) answered by the
//       resolver's 60 s cache; the two alternate in batches of 500 for BENCH_ROUNDS rounds (default 5), each section
//       holding that one key, so both read one row of the same size. Ratio: plain time / referenced time (target >= 0.9). The
//       resolver step alone (an opened value through `resolveSecretValue`) is timed apart, per read.
//   (b) cold reads: the first read of a reference, BENCH_COLD times (default 7) per backend, each on fresh backends
//       (no login token, no kept connection, nothing cached: `configureSecretResolver` rebuilds them): settings read,
//       TLS handshake, login where the backend has one, the read. Median and spread per backend.
import { randomBytes } from 'node:crypto';
import { configureSecrets, createLogger, ensureSecretsKey, resolveSecretValue, configureSecretResolver, resolveSecretReference, clearSecretCache } from '../adapter';
import { forgetAzureTokens, forgetConjurTokens, forgetVaultLogins } from '../adapter/secrets';
import { readSetting, updateSettings } from '../server/domain/settings/settings';
import { startAwsServer } from '../tests/support/aws-server';
import { startCcpServer } from '../tests/support/ccp-server';
import { startAzureServer, startConjurServer, startVaultServer } from '../tests/support/secret-backend-servers';
import { createBenchDatabase } from './support/database';

const READS = Number(process.env['BENCH_READS'] ?? 10_000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const COLD = Number(process.env['BENCH_COLD'] ?? 7);
const BATCH = 500;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number, d = 2) => n.toFixed(d);

async function main(): Promise<void> {
  const logger = createLogger(process.env['BENCH_LOG'] ? { level: process.env['BENCH_LOG'] } : { silent: true });
  configureSecrets({ masterKey: randomBytes(32), source: 'bench:secrets' });
  configureSecretResolver({ logger });
  const bench = await createBenchDatabase({ max: 10 });
  const VAULT_TOKEN = `hvs.${randomBytes(12).toString('hex')}`;
  const CONJUR = { account: 'bench', login: 'host/provisio', apiKey: randomBytes(16).toString('hex') };
  const AZURE = { tenantId: 'bench-tenant', clientId: 'bench-client', clientSecret: randomBytes(16).toString('hex') };
  const [vault, conjur, azure, aws, ccp] = await Promise.all([
    startVaultServer({ staticTokens: [VAULT_TOKEN] }),
    startConjurServer(CONJUR),
    startAzureServer(AZURE),
    startAwsServer(),
    startCcpServer(),
  ]);
  try {
    const db = bench.db;
    await ensureSecretsKey(db);
    const value = `bench-secret-${randomBytes(8).toString('hex')}`;
    vault.put('bench/read', { value });
    conjur.declare('bench/read', value);
    azure.setSecret('bench-kv-01', 'bench-read', value);
    aws.addUser('AKIABENCHSTATIC00000', 'bench-static-secret-0000000000000000000');
    aws.addUser('AKIABENCHCALLER00000', 'bench-caller-secret-0000000000000000000');
    aws.addRole('arn:aws:iam::123456789012:role/bench', { trusted: ['AKIABENCHCALLER00000'] });
    aws.putSecret('bench/read', { string: JSON.stringify({ password: value }) });
    const client = ccp.issueClient('bench-app');
    ccp.addApplication('Bench', 'bench-app');
    ccp.addAccount('BenchSafe', 'bench-read', value);

    const backendSettings = {
      vault_url: vault.url,
      vault_token: VAULT_TOKEN,
      vault_ca_cert_pem: vault.serverCa.certPem,
      conjur_url: conjur.url,
      conjur_account: CONJUR.account,
      conjur_login: CONJUR.login,
      conjur_api_key: CONJUR.apiKey,
      conjur_ca_cert_pem: conjur.serverCa.certPem,
      azure_tenant_id: AZURE.tenantId,
      azure_client_id: AZURE.clientId,
      azure_client_secret: AZURE.clientSecret,
      azure_authority_url: azure.authorityUrl,
      azure_vault_url_template: azure.vaultUrlTemplate,
      azure_ca_cert_pem: azure.serverCa.certPem,
      aws_region: aws.region,
      aws_access_key_id: 'AKIABENCHSTATIC00000',
      aws_secret_access_key: 'bench-static-secret-0000000000000000000',
      aws_secretsmanager_endpoint: aws.secretsManagerUrl,
      aws_sts_endpoint: aws.stsUrl,
      aws_ca_cert_pem: aws.caPem,
      ccp_url: ccp.url,
      ccp_app_id: 'Bench',
      ccp_client_cert_pem: client.certPem,
      ccp_client_key_pem: client.keyPem,
      ccp_ca_cert_pem: ccp.caPem,
    };
    const actor = { triggeredBy: 'system:bench' };
    await db.transaction((tx) => updateSettings(tx, 'secret_backend', backendSettings, actor));
    await db.transaction((tx) => updateSettings(tx, 'smtp', { password: value }, actor));
    await db.transaction((tx) => updateSettings(tx, 'active_directory', { bind_password: 'vault://bench/read#value' }, actor));

    // (a) warm reads through the service's read path.
    const readPlain = () => readSetting(db, 'smtp', 'password');
    const readReferenced = () => readSetting(db, 'active_directory', 'bind_password');
    if ((await readPlain()) !== value || (await readReferenced()) !== value) throw new Error('the two settings do not read the same value');
    const timed = async (read: () => Promise<unknown>, n: number): Promise<number> => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await read();
      return performance.now() - t0;
    };
    process.stdout.write('warming up (1,000 reads of each)…\n');
    await timed(readPlain, 1000);
    await timed(readReferenced, 1000);
    const plainMs: number[] = [];
    const refMs: number[] = [];
    const rows: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // The READS of each side in alternating batches, so a load that comes and goes on a shared machine falls on
      // both alike; which side starts alternates between rounds.
      let plain = 0;
      let ref = 0;
      for (let b = 0; b < READS / BATCH; b++) {
        const plainFirst = (round + b) % 2 === 0;
        if (plainFirst) plain += await timed(readPlain, BATCH);
        ref += await timed(readReferenced, BATCH);
        if (!plainFirst) plain += await timed(readPlain, BATCH);
      }
      plainMs.push(plain);
      refMs.push(ref);
      rows.push(`| ${round} | ${fmt(plainMs.at(-1)!, 0)} | ${fmt(refMs.at(-1)!, 0)} | ${fmt(plainMs.at(-1)! / refMs.at(-1)!)} |`);
    }

    // The resolver step alone: an opened value handed to resolveSecretValue (a cache hit for the reference).
    const opened = { plain: value, ref: 'vault://bench/read#value' };
    await resolveSecretValue(db, opened.ref);
    const stepUs = async (v: string) => {
      const t0 = performance.now();
      for (let i = 0; i < READS * 10; i++) await resolveSecretValue(db, v);
      return ((performance.now() - t0) * 1000) / (READS * 10);
    };
    const stepPlain = await stepUs(opened.plain);
    const stepRef = await stepUs(opened.ref);

    // (b) cold reads per backend.
    const cold: [string, string, string][] = [
      ['vault (token; KV v2 GET)', 'vault://bench/read#value', ''],
      ['conjur (authn with API key, then GET)', 'conjur://bench/read', ''],
      ['azurekv (client credentials token, then GET)', 'azurekv://bench-kv-01/bench-read', ''],
      ['awssm (static keys; GetSecretValue)', 'awssm://bench/read#password', ''],
      ['awssm (sts:AssumeRole, then GetSecretValue)', 'awssm://bench/read#password', 'role'],
      ['ccp (client certificate; GET Accounts)', 'ccp://BenchSafe/bench-read', ''],
    ];
    const coldRows: string[] = [];
    for (const [label, reference, mode] of cold) {
      const role = mode === 'role';
      await db.transaction((tx) =>
        updateSettings(
          tx,
          'secret_backend',
          role
            ? { aws_access_key_id: 'AKIABENCHCALLER00000', aws_secret_access_key: 'bench-caller-secret-0000000000000000000', aws_role_arn: 'arn:aws:iam::123456789012:role/bench' }
            : { aws_access_key_id: 'AKIABENCHSTATIC00000', aws_secret_access_key: 'bench-static-secret-0000000000000000000', aws_role_arn: null },
          actor,
        ),
      );
      const ms: number[] = [];
      for (let i = 0; i < COLD + 1; i++) {
        configureSecretResolver({ logger });
        forgetVaultLogins();
        forgetConjurTokens();
        forgetAzureTokens();
        clearSecretCache();
        const t0 = performance.now();
        const got = await resolveSecretReference(db, reference);
        const took = performance.now() - t0;
        if (got !== value) throw new Error(`${label}: read a different value`);
        // The first of each backend loads its modules' lazy parts (TLS contexts, JIT): not counted.
        if (i > 0) ms.push(took);
      }
      coldRows.push(`| ${label} | ${fmt(median(ms))} | ${fmt(Math.min(...ms))} | ${fmt(Math.max(...ms))} |`);
    }

    const pm = median(plainMs);
    const rm = median(refMs);
    process.stdout.write(`\n(a) ${READS} reads per phase, ${ROUNDS} rounds, readSetting on PostgreSQL (row + AES-GCM open + resolution)\n`);
    process.stdout.write(`| round | plain ms | referenced (cached) ms | plain / referenced |\n|---|---|---|---|\n${rows.join('\n')}\n`);
    process.stdout.write(`median: plain ${fmt(pm, 0)} ms (${fmt((pm * 1000) / READS)} µs/read), referenced ${fmt(rm, 0)} ms (${fmt((rm * 1000) / READS)} µs/read)\n`);
    process.stdout.write(`plain / referenced: ${fmt(pm / rm)} (target >= 0.9: ${pm / rm >= 0.9 ? 'met' : 'NOT met'})\n`);
    process.stdout.write(`resolver step alone (resolveSecretValue of an opened value): plain ${fmt(stepPlain, 3)} µs, reference from cache ${fmt(stepRef, 3)} µs per read\n`);
    process.stdout.write(`\n(b) first (uncached) read per backend, ${COLD} cold reads each on fresh backends (loopback HTTPS), ms\n`);
    process.stdout.write(`| backend | median | min | max |\n|---|---|---|---|\n${coldRows.join('\n')}\n`);
  } finally {
    configureSecretResolver({});
    await Promise.all([vault.close(), conjur.close(), azure.close(), aws.close(), ccp.close()]);
    await bench.drop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench:secrets failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
