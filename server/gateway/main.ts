import type { Server } from 'node:http';
import { createLogger, migrate, openDatabase } from '../../adapter';
import { createDirectory } from '../../adapter';
import { buildConfig, ConfigError, type Config } from '../config';
import { buildGatewayApp } from './app';
import { readDirectorySettings } from './settings';
import { closeServer, exitOnSignal } from '../shutdown';
import { startSecretsAtRest } from '../domain/secrets';

/** Port of the AD gateway when `AD_GATEWAY_PORT` is unset. */
export const DEFAULT_GATEWAY_PORT = 8090;

/** The service's config with the gateway's port (`AD_GATEWAY_PORT`, default 8090) in place of `PORT`. */
export function gatewayConfigFromEnv(base: Readonly<Config>, env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const raw = env['AD_GATEWAY_PORT'];
  const port = raw === undefined || raw === '' ? DEFAULT_GATEWAY_PORT : Number(raw);
  if (!Number.isInteger(port)) throw new ConfigError(`invalid configuration: AD_GATEWAY_PORT must be an integer, got '${raw}'`);
  return buildConfig({ ...base, port });
}

/**
 * `provisio ad-gateway`: the AD gateway on `config.port`, against the service's database (API tokens, audit)
 * and the directory the `active_directory` settings (or AD_* variables) name, until SIGTERM or SIGINT.
 * Settings are read once at start: restart the gateway after changing them.
 */
export async function serveGateway(config: Readonly<Config>, env: NodeJS.ProcessEnv = process.env): Promise<Server> {
  const logger = createLogger({ level: config.logLevel });
  // On the embedded database it works through a running `serve`'s socket, or holds DATA_DIR and serves it itself.
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, pgliteSharedBuffers: config.pgliteSharedBuffers, command: 'provisio ad-gateway', serveToOthers: true, logger });
  try {
    await migrate(db);
    // The bind password is stored sealed: the gateway needs the service's master key (SECRETS_KEY or the key file).
    await startSecretsAtRest(db, { envKey: config.secretsKey, keyFile: config.secretsKeyFile, dataDir: config.dataDir }, logger);
    const settings = await readDirectorySettings(db, env);
    const directory = createDirectory(settings, { logger });
    const app = buildGatewayApp({ db, logger, directory }, config);
    const server = app.listen(config.port, config.host, () => {
      logger.info('AD gateway listening', {
        url: `http://${config.host}:${config.port}`,
        docs: `http://${config.host}:${config.port}/docs`,
        directory: `${settings.server}${settings.port ? `:${settings.port}` : ''}`,
        database: db.kind,
      });
    });
    exitOnSignal(logger, config.shutdownTimeoutMs, async () => {
      await closeServer(server);
      await directory.close();
      await db.close();
    });
    return server;
  } catch (e) {
    await db.close();
    throw e;
  }
}
