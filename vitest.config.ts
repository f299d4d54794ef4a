import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real servers (S3, the service); give them room but fail rather than hang.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // it.concurrent tests (the conformance suite) wait on servers and checkers more than on the CPU.
    maxConcurrency: 12,
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default'],
  },
});
