// The committed generated types equal what the generator makes from the current documents
// (docs/asyncapi.json and the OpenAPI snapshot openapi.json), and the SDK handles every
// server event the AsyncAPI document lists. The e2e test tests/e2e/sdk-openapi-snapshot.test.mjs
// checks that the snapshot equals a live server's GET /openapi.json.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';

import { ASYNCAPI, ROOT, generate } from '../scripts/generate-lib.mjs';

/** The code of a generated file without its comments (descriptions may change freely). */
const code = (text) => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  .split('\n').map((l) => l.trimEnd()).filter((l) => l.trim()).join('\n');

test('src/generated/* is up to date with docs/asyncapi.json and openapi.json (run `npm run generate`)', async () => {
  for (const [file, text] of Object.entries(await generate())) {
    const committed = await readFile(path.join(ROOT, file), 'utf8');
    assert.ok(code(committed) === code(text),
      `${file} differs from a fresh generation (types, not only comments): run \`npm run generate\` in clients/js`);
  }
});

test('every server event of docs/asyncapi.json is applied by the SDK', async () => {
  const doc = JSON.parse(await readFile(ASYNCAPI, 'utf8'));
  const names = Object.values(doc.operations).filter((op) => op.action === 'send' && op.channel.$ref === '#/channels/chat')
    .flatMap((op) => op.messages.map((m) => doc.components.messages[m.$ref.split('/').pop()].name));
  assert.ok(names.length >= 17, `only ${names.length} events in the document`);
  const src = (await readFile(path.join(ROOT, 'src/store.ts'), 'utf8')) + (await readFile(path.join(ROOT, 'src/client.ts'), 'utf8'));
  const missing = names.filter((n) => !src.includes(`case '${n}'`));
  assert.deepEqual(missing, [], 'events without a handler');
});
