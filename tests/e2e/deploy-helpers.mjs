// Shared helpers of the deployment-file tests (deploy-*.test.mjs): where the repository
// is, reading its files, a temporary directory per test file, and strict YAML parsing.
// The deploy tests run offline and need no Docker engine; nothing there starts Courier.
//
// Environment:
//   COURIER_DEPLOY_ROOT          repository to check (default: ../.. from this file)

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(process.env.COURIER_DEPLOY_ROOT || path.join(HERE, '..', '..'));
export const file = (...p) => path.join(ROOT, ...p);
export const read = (...p) => readFileSync(file(...p), 'utf8');

/** A fresh temporary directory, removed after the calling test file's tests. */
export function useTmpDir() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'courier-deploy-test-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  return tmp;
}

/** Parses YAML strictly: duplicate keys and syntax errors fail; `<<` merge keys are resolved. */
export function parseYaml(text, name) {
  const doc = YAML.parseDocument(text, { merge: true, uniqueKeys: true, prettyErrors: true });
  assert.deepEqual(doc.errors.map(String), [], `${name}: YAML errors`);
  return doc.toJS({ maxAliasCount: 1000 });
}
