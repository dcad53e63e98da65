// Refreshes the SDK's generated types after a server change: starts a throwaway all-in-one
// deployment from COURIER_BIN_DIR with tests/e2e's harness, saves its GET /openapi.json as
// openapi.json, and regenerates src/generated/ from it and docs/asyncapi.json.
// Run: `COURIER_BIN_DIR=target/debug node clients/js/scripts/refresh-types.mjs`, then commit.

import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { ROOT } from './generate-lib.mjs';

const { Deployment } = await import('../../../tests/e2e/harness.mjs');
const d = new Deployment({ mode: 'all-in-one' });
await d.start();
try {
  const run = spawnSync(process.execPath, [path.join(ROOT, 'scripts/generate-types.mjs'), '--openapi-from', d.apiUrl],
    { stdio: 'inherit' });
  if (run.status !== 0) throw new Error(`generate-types exited with ${run.status}`);
} finally {
  await d.stop();
}
