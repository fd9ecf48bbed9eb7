import { defineConfig } from 'vitest/config';

export default defineConfig({
  // tsconfig.json's paths: `switchboard/client` and `switchboard/server` are the sources in tests, never dist/.
  resolve: { tsconfigPaths: true },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
