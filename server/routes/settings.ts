import type { RouteModule } from './route-module';
import { announceSettingsChanged, getSettings, listSettingsSections, updateSettings } from '../domain/settings/settings';
import { adminActor } from './api-tokens';
import { readGraphSubscriptionState } from '../domain/identity/graph-subscription';

export const settingsHandlers: RouteModule = ({ db }) => ({
  listSettingsSections: async () => ({ status: 200, body: { items: listSettingsSections() } }),

  getSettings: async ({ path }) => ({ status: 200, body: await getSettings(db, path.section) }),

  getGraphSubscription: async () => {
    const st = await readGraphSubscriptionState(db);
    const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
    return {
      status: 200,
      body: {
        resource: st?.resource ?? 'users',
        status: st?.status ?? 'never_checked',
        subscription_id: st?.subscription_id ?? null,
        change_type: st?.change_type ?? 'updated,deleted',
        notification_url: st?.notification_url ?? null,
        expires_at: iso(st?.expires_at),
        last_error: st?.last_error ?? null,
        created_at: iso(st?.created_at),
        renewed_at: iso(st?.renewed_at),
        checked_at: iso(st?.checked_at),
      },
    };
  },

  updateSettings: async (input) => {
    const actor = adminActor(input);
    const view = await db.transaction((tx) => updateSettings(tx, input.path.section, input.body, actor));
    // Committed: what was opened from this section (the directory) is opened again before the answer goes out.
    announceSettingsChanged(input.path.section);
    return { status: 200, body: view };
  },
});
