import type { RouteModule } from './route-module';
import { migrateSecrets } from '../domain/secrets/migrate';
import { adminActor } from './api-tokens';

export const secretHandlers: RouteModule = ({ db, logger }) => ({
  migrateSecrets: async (input) => {
    const actor = adminActor(input);
    const report = await migrateSecrets(db, { dryRun: input.body?.dry_run ?? false, actor, logger });
    return { status: 200, body: report };
  },
});
