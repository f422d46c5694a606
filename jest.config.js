/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>'],
  testMatch: ['<rootDir>/tests/**/*.test.ts', '<rootDir>/{server,adapter,integration-model,workflows}/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: { '^.+\\.tsx?$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }] },
  // Generated clients import siblings with a `.js` suffix (NodeNext style); map them back to the `.ts` source.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  // A bound on hangs, not a speed check: set-up hooks that start real servers and build the app take longer on a busy
  // 2-core machine (30 s was exceeded by integration-oauth's beforeAll in CI with both workers loaded).
  testTimeout: 60000,
  // Each test file opens its own database; two workers keep the 2-core machine busy without thrashing.
  maxWorkers: 2,
  // Shared real servers (Samba AD) start lazily in the tests that need them; setup gives the run an id, teardown stops them.
  globalSetup: '<rootDir>/tests/support/jest-global-setup.ts',
  globalTeardown: '<rootDir>/tests/support/jest-global-teardown.ts',
  // Secrets at rest: each test file's processes seal under the fixed test master key (tests/support/secrets.ts).
  setupFiles: ['<rootDir>/tests/support/jest-setup-secrets.ts'],
};
