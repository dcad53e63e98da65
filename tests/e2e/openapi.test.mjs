// The OpenAPI document served at GET /openapi.json, and Schemathesis run against the live
// REST API from it: no 5xx, every response matches the document (status code, content
// type, headers, body schema), and operations that need the bearer token refuse requests
// without it.
//
// Needs the `schemathesis` CLI (PyPI, 4.x) on the PATH, or COURIER_E2E_SCHEMATHESIS naming it.
// COURIER_E2E_SCHEMATHESIS_EXAMPLES (default 15) bounds the examples per operation;
// COURIER_E2E_SCHEMATHESIS_SEED reproduces a run (the seed used is printed on failure).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { settings, useDeployment } from './harness.mjs';

const SCHEMATHESIS = process.env.COURIER_E2E_SCHEMATHESIS ?? 'schemathesis';
const EXAMPLES = Number.parseInt(process.env.COURIER_E2E_SCHEMATHESIS_EXAMPLES ?? '', 10) || 15;
const SEED = Number.parseInt(process.env.COURIER_E2E_SCHEMATHESIS_SEED ?? '', 10) || randomInt(1, 2 ** 31);
/** Hard limit on the Schemathesis process; the run itself normally takes well under a minute. */
const RUN_TIMEOUT_MS = 150_000;

/** Every route of the wire contract, as [method, OpenAPI path]. */
const CONTRACT_ROUTES = [
  ['post', '/auth/register'],
  ['post', '/auth/login'],
  ['post', '/auth/refresh'],
  ['get', '/users/me'],
  ['get', '/users/{userId}'],
  ['post', '/chats'],
  ['get', '/chats'],
  ['get', '/chats/{chatId}'],
  ['post', '/chats/{chatId}/participants'],
  ['delete', '/chats/{chatId}/participants/{userId}'],
  ['post', '/chats/{chatId}/messages'],
  ['get', '/chats/{chatId}/messages'],
  ['post', '/chats/{chatId}/read'],
  // Contract v2
  ['get', '/users/{userId}/presence'],
  ['post', '/users/presence'],
  ['patch', '/chats/{chatId}'],
  ['patch', '/chats/{chatId}/participants/{userId}'],
  ['patch', '/chats/{chatId}/messages/{messageId}'],
  ['delete', '/chats/{chatId}/messages/{messageId}'],
  ['get', '/chats/{chatId}/messages/{messageId}/replies'],
  ['put', '/chats/{chatId}/messages/{messageId}/reactions/{emoji}'],
  ['delete', '/chats/{chatId}/messages/{messageId}/reactions/{emoji}'],
  ['put', '/chats/{chatId}/pins/{messageId}'],
  ['delete', '/chats/{chatId}/pins/{messageId}'],
  ['get', '/chats/{chatId}/pins'],
  ['post', '/uploads'],
  ['get', '/search/messages'],
  ['get', '/notifications'],
  ['post', '/notifications/read'],
  ['post', '/chats/{chatId}/hooks'],
  ['get', '/chats/{chatId}/hooks'],
  ['delete', '/chats/{chatId}/hooks/{hookId}'],
  ['post', '/hooks/{hookId}/{token}'],
  // Contract v3: the chat list
  ['put', '/chats/{chatId}/settings'],
  // Contract v3: moderation
  ['post', '/reports'],
  ['get', '/admin/reports'],
  ['post', '/admin/reports/{reportId}/resolve'],
  ['post', '/admin/users/{userId}/ban'],
  ['delete', '/admin/users/{userId}/ban'],
  ['delete', '/admin/messages/{messageId}'],
];

/** Attachments go to a bucket of this run on the S3 server of scripts/services.sh (moto). */
const S3 = process.env.S3_TEST_ENDPOINT ?? 'http://127.0.0.1:9090';
const BUCKET = `courier-openapi-${randomBytes(6).toString('hex')}`;

const d = useDeployment({
  mode: 'all-in-one',
  // Schemathesis sends hundreds of auth requests from one address: the rate limits are off
  // (max 0), since 429 (documented) would hide what the handlers do.
  env: {
    RATE_LIMIT_AUTH_IP_MAX: '0',
    RATE_LIMIT_AUTH_USERNAME_MAX: '0',
    RATE_LIMIT_SEND_MAX: '0',
    S3_ENDPOINT: S3,
    S3_BUCKET: BUCKET,
    S3_ACCESS_KEY_ID: 'openapi',
    S3_SECRET_ACCESS_KEY: 'openapi-secret',
  },
});

/** `text` with each line cut to 2000 characters (tracebacks can hold whole source files). */
const clip = (text) => text.split('\n')
  .map((line) => (line.length > 2000 ? `${line.slice(0, 2000)} [... ${line.length - 2000} more]` : line))
  .join('\n');

/** Runs `cmd args` and resolves {code, signal, output} (stdout and stderr interleaved). */
function runCapture(cmd, args, { cwd, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, NO_COLOR: '1', PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    child.stderr.on('data', (c) => chunks.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err.code === 'ENOENT'
        ? new Error(`${cmd} not found: pip install schemathesis (or set COURIER_E2E_SCHEMATHESIS)`)
        : err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

d.test('GET /openapi.json describes every contract route', async () => {
  const res = await d.api('GET', '/openapi.json');
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'] ?? '', /^application\/json/);
  const doc = res.body;
  assert.match(doc.openapi, /^3\.1\./);
  for (const [method, p] of CONTRACT_ROUTES) {
    const op = doc.paths?.[p]?.[method];
    assert.ok(op, `${method.toUpperCase()} ${p} is not described`);
    if (!p.startsWith('/auth/') && !p.startsWith('/hooks/')) {
      assert.deepEqual(op.security, [{ bearer: [] }], `${method.toUpperCase()} ${p} needs the bearer token`);
    }
  }
  assert.equal(doc.components.securitySchemes.bearer.scheme, 'bearer');
});

d.test('text with a NUL character is refused with 400, not stored or a 500', async () => {
  const alice = await d.register('alice');
  const cases = [
    ['POST', '/auth/register', { username: `nul_${Date.now()}`, password: 'password-123', displayName: 'a\u0000b' }],
    ['POST', '/auth/login', { username: 'a\u0000b', password: 'password-123' }],
    ['POST', '/chats', { type: 'group', title: 'a\u0000b', participantIds: [] }],
  ];
  for (const [method, p, body] of cases) {
    const res = await d.api(method, p, { token: alice.accessToken, body });
    assert.equal(res.status, 400, `${method} ${p}: ${res.status} ${JSON.stringify(res.body)}`);
    assert.equal(res.body.code, 'validation_failed');
  }
});

d.test('schemathesis finds no server error and no response outside the document',
  { timeout: RUN_TIMEOUT_MS + 30_000 }, async () => {
    // Real data, so generated requests also reach the handlers' success paths: three users,
    // a group chat (alice owns it) and a direct chat, each with a message.
    const made = await fetch(`${S3}/${BUCKET}`, { method: 'PUT' });
    assert.ok(made.ok, `creating bucket ${BUCKET} on ${S3}: ${made.status}`);
    const [alice, bob, carol] = await d.registerAll('alice', 'bob', 'carol');
    const group = await d.createGroup(alice.accessToken, 'schemathesis', [bob.user.id, carol.user.id]);
    const direct = await d.createDirect(alice.accessToken, bob.user.id);
    await d.send(alice.accessToken, group.id, 'hello group');
    await d.send(alice.accessToken, direct.id, 'hello bob');

    const dir = await mkdtemp(path.join(os.tmpdir(), 'courier-schemathesis-'));
    try {
      // Path ids and body user ids come from these dictionaries half of the time, and are
      // generated (random UUIDs, or invalid values in negative tests) otherwise.
      const users = [alice, bob, carol].map((u) => JSON.stringify(u.user.id));
      await writeFile(path.join(dir, 'schemathesis.toml'), [
        '[dictionaries.chats]',
        `values = [${JSON.stringify(group.id)}, ${JSON.stringify(direct.id)}]`,
        '[dictionaries.users]',
        `values = [${users.join(', ')}]`,
        '[parameters]',
        '"path.chatId" = { dictionary = "chats", probability = 0.5 }',
        '"path.userId" = { dictionary = "users", probability = 0.5 }',
        '"body.participantIds[*]" = { dictionary = "users", probability = 0.5 }',
        '"body.userIds[*]" = { dictionary = "users", probability = 0.5 }',
        '',
      ].join('\n'));

      const args = [
        'run', `${d.apiUrl}/openapi.json`,
        '--url', d.apiUrl,
        '-H', `Authorization: Bearer ${alice.accessToken}`,
        '--checks', [
          'not_a_server_error',
          'status_code_conformance',
          'content_type_conformance',
          'response_schema_conformance',
          'response_headers_conformance',
          'ignored_auth', // operations with `security` really refuse requests without the token
        ].join(','),
        '--phases', 'examples,coverage,fuzzing',
        '--max-examples', String(EXAMPLES),
        '--seed', String(SEED),
        // One worker: with several, Hypothesis' lambda descriptions call ast.parse from threads,
        // which CPython 3.11 can fail with "AST constructor recursion depth mismatch".
        '--workers', '1',
        '--request-timeout', '20',
        '--generation-database', 'none',
        '--no-color',
      ];
      const started = Date.now();
      const { code, signal, output } = await runCapture(SCHEMATHESIS, args,
        { cwd: dir, timeoutMs: RUN_TIMEOUT_MS });
      const took = ((Date.now() - started) / 1000).toFixed(1);
      if (settings.verbose || code !== 0) process.stderr.write(`${clip(output)}\n`);
      assert.equal(code, 0,
        `schemathesis (seed ${SEED}) ${signal ? `killed by ${signal}` : `exited ${code}`} after ${took} s;`
        + ` its output is above. Reproduce: COURIER_E2E_SCHEMATHESIS_SEED=${SEED} node --test openapi.test.mjs`);
      assert.match(output, /passed/i, 'schemathesis reported no passed test cases');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
