// Profiles and user search end to end (contract v3 "Accounts and safety"), split mode
// with two gateways, against the S3 stand-in (moto, started by scripts/services.sh;
// S3_TEST_ENDPOINT overrides): an avatar goes up through the uploads flow, PATCH
// /users/me sets it, a fellow member's socket on the other gateway gets user.updated
// with an avatarUrl that downloads the very image, the user's own socket gets it too,
// a user sharing no chat does not; GET /users/search finds the user by prefix and by a
// misspelling, and hides a user from someone they blocked.

import assert from 'node:assert/strict';

import { assertError, assertUser } from './contract.mjs';
import { uniqueResourceName, useDeployment } from './harness.mjs';
import { entries, expectNone, waitEvent } from './realtime-helpers.mjs';
import { barrier } from './barrier.mjs';

const S3 = process.env.S3_TEST_ENDPOINT ?? 'http://127.0.0.1:9090';
const BUCKET = uniqueResourceName().replaceAll('_', '-');

const d = useDeployment({
  mode: 'split',
  gateways: 2,
  env: {
    S3_ENDPOINT: S3,
    S3_BUCKET: BUCKET,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: 'e2e',
    S3_SECRET_ACCESS_KEY: 'e2e-secret',
  },
});

// A 1×1 PNG.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64');

async function search(account, q, extra = '') {
  const res = await d.api('GET', `/users/search?q=${encodeURIComponent(q)}${extra}`, { token: account.accessToken });
  assert.equal(res.status, 200, `search ${q}: ${res.status} ${JSON.stringify(res.body)}`);
  assert.ok(Object.hasOwn(res.body, 'nextCursor'), JSON.stringify(res.body));
  res.body.users.forEach((u) => assertUser(u));
  return res.body.users.map((u) => u.username);
}

d.test('an avatar uploaded and set reaches fellow members live and downloads; search finds by prefix and typo', { timeout: 60_000 }, async () => {
  assert.ok((await fetch(`${S3}/${BUCKET}`, { method: 'PUT' })).ok, `creating bucket ${BUCKET}`);
  const [max, bob, carol, dave] = await d.registerAll('maximilian', 'bob', 'carol', 'dave');
  const group = await d.createGroup(max.accessToken, 'profiles', [bob.user.id, carol.user.id]);
  const [maxSocket] = await d.connectSockets(max, [0]);
  const [bobSocket] = await d.connectSockets(bob, [1]);
  const [daveSocket] = await d.connectSockets(dave, [0]);
  assert.ok(group.participants.length === 3);

  // The uploads flow: announce, then the presigned PUT of the bytes.
  const announced = await d.api('POST', '/uploads', {
    token: max.accessToken,
    body: { fileName: 'me.png', contentType: 'image/png', size: PNG.length },
  });
  assert.equal(announced.status, 201, JSON.stringify(announced.body));
  const put = await fetch(announced.body.uploadUrl, { method: 'PUT', headers: announced.body.headers, body: PNG });
  assert.equal(put.status, 200, `presigned PUT: ${put.status}`);

  // A text upload is no avatar.
  const text = await d.api('POST', '/uploads', {
    token: max.accessToken, body: { fileName: 'a.txt', contentType: 'text/plain', size: 1 },
  });
  assertError(await d.api('PATCH', '/users/me', { token: max.accessToken, body: { avatarUploadId: text.body.id } }),
    400, 'validation_failed');

  const patched = await d.api('PATCH', '/users/me', {
    token: max.accessToken,
    body: { displayName: 'Maximilian Avatar', bio: 'likes trains', avatarUploadId: announced.body.id },
  });
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  assertUser(patched.body, { id: max.user.id, displayName: 'Maximilian Avatar', bio: 'likes trains' });

  const mine = (p) => p.user?.id === max.user.id && p.user.avatarUrl;
  const { payload } = await waitEvent(bobSocket, 'user.updated', mine, { timeoutMs: 10_000 });
  assertUser(payload.user, { username: max.username, displayName: 'Maximilian Avatar', bio: 'likes trains' });
  assert.equal(payload.offset, undefined, 'ephemeral: no offset');
  const got = await fetch(payload.user.avatarUrl);
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('content-type'), 'image/png');
  assert.deepEqual(Buffer.from(await got.arrayBuffer()), PNG, 'the avatarUrl returns the uploaded image');
  await waitEvent(maxSocket, 'user.updated', mine, { timeoutMs: 10_000 });

  // Once per socket; nothing to a user who shares no chat.
  await expectNone(d, [daveSocket], 'user.updated');
  await barrier(d, [bobSocket, maxSocket]);
  for (const s of [bobSocket, maxSocket]) {
    assert.equal(entries(s, 'user.updated').length, 1, `${s.label}: user.updated once`);
  }

  // Reads mint their own url of the same image.
  const seen = await d.api('GET', `/users/${max.user.id}`, { token: dave.accessToken });
  assert.equal(seen.status, 200);
  assert.deepEqual(Buffer.from(await (await fetch(seen.body.avatarUrl)).arrayBuffer()), PNG);

  // Search: by prefix, by a misspelling (trigram), case-insensitively.
  assert.ok((await search(carol, max.username.slice(0, 8))).includes(max.username), 'prefix');
  assert.ok((await search(carol, 'MAXIMILLIAN')).includes(max.username), 'typo');
  assert.ok((await search(carol, 'avatar')).includes(max.username), 'display name word');
  assert.deepEqual(await search(max, max.username), [], 'never oneself');

  // bob blocks carol: carol no longer finds bob; dave still does.
  assert.equal((await d.api('PUT', `/users/${carol.user.id}/block`, { token: bob.accessToken })).status, 204);
  assert.deepEqual(await search(carol, bob.username), []);
  assert.deepEqual(await search(dave, bob.username), [bob.username]);

  assertError(await d.api('GET', '/users/search?q=', { token: carol.accessToken }), 400, 'validation_failed');
});
