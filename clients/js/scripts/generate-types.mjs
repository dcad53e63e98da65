// Writes src/generated/*.ts from docs/asyncapi.json and openapi.json (see generate-lib.mjs).
// `--openapi-from <url>` first refreshes the snapshot openapi.json from a running server's
// GET /openapi.json (e.g. http://127.0.0.1:3000).

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { OPENAPI, ROOT, generate } from './generate-lib.mjs';

const at = process.argv.indexOf('--openapi-from');
if (at > 0) {
  const res = await fetch(new URL('/openapi.json', process.argv[at + 1]));
  if (!res.ok) throw new Error(`GET /openapi.json: ${res.status}`);
  await writeFile(OPENAPI, `${JSON.stringify(await res.json(), null, 2)}\n`);
}
for (const [file, text] of Object.entries(await generate())) {
  await mkdir(path.dirname(path.join(ROOT, file)), { recursive: true });
  await writeFile(path.join(ROOT, file), text);
  console.log(`wrote ${file}`);
}
