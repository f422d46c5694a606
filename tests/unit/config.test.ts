// The service's environment contract for the settings that have no other test of their own.
import { buildConfig, configFromEnv, ConfigError } from '../../server/config';

describe('configFromEnv', () => {
  test('PGLITE_SHARED_BUFFERS: 32MB by default, the variable overrides, a bad value is refused naming the setting', () => {
    expect(buildConfig().pgliteSharedBuffers).toBe('32MB');
    expect(configFromEnv({ PGLITE_SHARED_BUFFERS: '64MB' }).pgliteSharedBuffers).toBe('64MB');
    expect(() => configFromEnv({ PGLITE_SHARED_BUFFERS: '64 megabytes' })).toThrow(ConfigError);
    expect(() => configFromEnv({ PGLITE_SHARED_BUFFERS: '64 megabytes' })).toThrow(/pgliteSharedBuffers/);
  });
});
