// The SDK's OpenAPI snapshot (clients/js/openapi.json, from which clients/js/src/generated/
// openapi.ts is generated and checked by the SDK's unit tests) equals the live document at
// GET /openapi.json, prose aside (description, summary, example, title), so a server change
// that renames a field fails here until the snapshot and the SDK's types are regenerated
// (`cd clients/js && npm run generate -- --openapi-from URL`).

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';

import { useDeployment } from './harness.mjs';

const d = useDeployment({ mode: 'all-in-one' });

const PROSE = ['description', 'summary', 'example', 'examples', 'title'];
/** Maps whose keys are names (a property called `title` is no prose). */
const NAMED = ['properties', 'schemas', 'paths', 'responses', 'parameters', 'headers', 'content', 'securitySchemes'];

/** The document without its prose: what a client's types depend on. */
function structure(value, parentKey = '') {
  if (Array.isArray(value)) return value.map((v) => structure(v));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value)
    .filter(([k]) => NAMED.includes(parentKey) || !PROSE.includes(k))
    .map(([k, v]) => [k, structure(v, k)]));
}

d.test('clients/js/openapi.json equals the served GET /openapi.json (prose aside)', async () => {
  const res = await d.api('GET', '/openapi.json');
  assert.equal(res.status, 200);
  const snapshot = JSON.parse(await readFile(new URL('../../clients/js/openapi.json', import.meta.url), 'utf8'));
  assert.deepEqual(structure(snapshot), structure(res.body),
    'the OpenAPI document changed: run `npm run generate -- --openapi-from <api url>` in clients/js and commit');
});
