/**
 * Unit specs live beside the code (src/**\/*.spec.ts, sandbox/**\/*.spec.ts for the provider emulators); integration
 * and end-to-end specs in test/. Two projects: `default` runs every spec with the queues on Redis (or on what
 * TEST_QUEUE_BACKEND names); `postgres` runs the end-to-end specs again with the queues and all shared state on
 * Postgres alone (the specs of the state ports already run against both backends in `default`).
 */
const project = {
  rootDir: '.',
  testEnvironment: 'node',
  moduleFileExtensions: ['ts', 'js', 'json'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
};

module.exports = {
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  maxWorkers: 2,
  testTimeout: 30000,
  projects: [
    {
      ...project,
      displayName: 'default',
      testRegex: '(src|sandbox|test)/.*\\.spec\\.ts$',
      setupFiles: ['reflect-metadata'],
    },
    {
      ...project,
      displayName: 'postgres',
      testRegex: 'test/.*\\.e2e\\.spec\\.ts$',
      // Its platforms choose their backend as `npm start` does, and it proves the Postgres-alone first run itself; the
      // Redis Cluster spec is about Redis alone.
      testPathIgnorePatterns: [
        '/node_modules/',
        'test/embedded-services\\.e2e\\.spec\\.ts$',
        'test/redis-cluster\\.e2e\\.spec\\.ts$',
      ],
      setupFiles: ['reflect-metadata', '<rootDir>/test/support/queues-on-postgres.ts'],
    },
  ],
};
