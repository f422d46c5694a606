import type { RouteModule } from './route-module';
import { announceSettingsChanged, getSettings, listSettingsSections, updateSettings } from '../domain/settings/settings';
import { adminActor } from './api-tokens';

export const settingsHandlers: RouteModule = ({ db }) => ({
  listSettingsSections: async () => ({ status: 200, body: { items: listSettingsSections() } }),

  getSettings: async ({ path }) => ({ status: 200, body: await getSettings(db, path.section) }),

  updateSettings: async (input) => {
    const actor = adminActor(input);
    const view = await db.transaction((tx) => updateSettings(tx, input.path.section, input.body, actor));
    // Committed: what was opened from this section (the directory) is opened again before the answer goes out.
    announceSettingsChanged(input.path.section);
    return { status: 200, body: view };
  },
});
