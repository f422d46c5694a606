#!/usr/bin/env node
import { configFromEnv, ConfigError } from './config';
import { mintTokenFromCli } from './domain/tokens/api-tokens';
import { describeChainReport, verifyAuditChain } from './domain/audit/verify';
import { openRuntime, runWorker, secretsKeySource, serve } from './main';
import { runRotateKey } from './domain/secrets';
import { loadMasterKey } from '../adapter';
import { gatewayConfigFromEnv, serveGateway } from './gateway';

const USAGE = `usage: provisio <command>

commands:
  serve                                          run the HTTP API (and the embedded queue)
  worker [--cluster ID]                          run workflow step workers and the order consumers, without HTTP;
                                                 with --cluster, also execute integration calls routed to gateway
                                                 cluster ID
  migrate                                        apply pending database migrations and exit
  ad-gateway                                     run the AD gateway (REST over LDAP, openapi/integrations/ad-gateway.yaml)
                                                 on AD_GATEWAY_PORT (default 8090), against the same database for tokens
  token create --name N --scopes a,b [--role R] [--approver-email E] [--expires-at ISO]
                                                 mint an API token and print it once (--approver-email:
                                                 required with, and only with, --role approver)
  audit verify                                   walk the audit log's hash chain: print "audit chain intact: N rows, head
                                                 <hash>" and exit 0, or the first broken link and exit 1
  secrets rotate-key [--new-key-file F] [--new-data-key]
                                                 re-wrap every data key under a new master key (from F, else
                                                 SECRETS_NEW_KEY, else generated), without downtime; --new-data-key:
                                                 a fresh data key with every secret re-sealed under it (alone: the
                                                 master key stays)

On the embedded database (no DATABASE_URL) one process holds DATA_DIR: worker, migrate, token create and ad-gateway
started beside a running serve work through its socket (DATA_DIR/.s.PGSQL.5432); a second serve is refused.

environment: PORT, HOST, DATA_DIR, DATABASE_URL, ADMIN_KEY, WEBHOOK_SECRET_TOKEN, DEMO, LOG_LEVEL,
  SECRETS_KEY, SECRETS_KEY_FILE (the master key secrets at rest are sealed under; default DATA_DIR/secrets.key)
  ad-gateway: AD_GATEWAY_PORT, and AD_SERVER, AD_PORT, AD_SECURITY, AD_BIND_DN, AD_BIND_PASSWORD, AD_BASE_DN,
              AD_CA_CERT_FILE, AD_TLS_SERVER_NAME, AD_AUTH_TYPE, AD_KERBEROS_PRINCIPAL,
              AD_KERBEROS_KEYTAB_FILE, AD_KERBEROS_SPN_HOST, AD_KRB5_CONF, AD_SASL_PROTECTION over the
              active_directory settings`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const config = configFromEnv();
  switch (command) {
    case 'serve':
      await serve(config);
      return -1; // keeps running
    case 'worker': {
      const cluster = flag(rest, 'cluster');
      if (rest.includes('--cluster') && (cluster === undefined || cluster === '' || cluster.startsWith('--'))) {
        process.stderr.write(`--cluster needs a cluster id\n${USAGE}\n`);
        return 2;
      }
      await runWorker(config, cluster !== undefined ? { cluster } : {});
      return -1; // keeps running
    }
    case 'ad-gateway':
      await serveGateway(gatewayConfigFromEnv(config));
      return -1; // keeps running
    case 'migrate': {
      const rt = await openRuntime(config, { schedule: false, embedded: { command: 'provisio migrate' } });
      await rt.queue.stop();
      await rt.db.close();
      return 0;
    }
    case 'token': {
      if (rest[0] !== 'create') break;
      const rt = await openRuntime(config, { schedule: false, embedded: { command: 'provisio token create' } });
      try {
        const raw = await mintTokenFromCli(rt.db, {
          name: flag(rest, 'name'),
          scopes: flag(rest, 'scopes'),
          role: flag(rest, 'role'),
          expiresAt: flag(rest, 'expires-at'),
          approverEmail: flag(rest, 'approver-email'),
        });
        process.stdout.write(`${raw}\n`);
        return 0;
      } finally {
        await rt.queue.stop();
        await rt.db.close();
      }
    }
    case 'audit': {
      if (rest[0] !== 'verify') break;
      const rt = await openRuntime(config, { schedule: false, embedded: { command: 'provisio audit verify' } });
      try {
        const report = await verifyAuditChain(rt.db);
        (report.intact ? process.stdout : process.stderr).write(`${describeChainReport(report)}\n`);
        return report.intact ? 0 : 1;
      } finally {
        await rt.queue.stop();
        await rt.db.close();
      }
    }
    case 'secrets': {
      if (rest[0] !== 'rotate-key') break;
      const newKeyFile = flag(rest, 'new-key-file');
      if (rest.includes('--new-key-file') && (newKeyFile === undefined || newKeyFile.startsWith('--'))) {
        process.stderr.write(`--new-key-file needs a file\n${USAGE}\n`);
        return 2;
      }
      const rt = await openRuntime(config, { schedule: false, embedded: { command: 'provisio secrets rotate-key' } });
      try {
        const lines = await runRotateKey({
          db: rt.db,
          current: loadMasterKey(secretsKeySource(config)),
          newKeyFile,
          envNewKey: process.env['SECRETS_NEW_KEY'],
          newDataKey: rest.includes('--new-data-key'),
        });
        process.stdout.write(`${lines.join('\n')}\n`);
        return 0;
      } finally {
        await rt.queue.stop();
        await rt.db.close();
      }
    }
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(`${USAGE}\n`);
      return command ? 0 : 2;
  }
  process.stderr.write(`unknown command: ${argv.join(' ')}\n${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`provisio: ${err instanceof ConfigError || err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
