// JWT crafting for tests that hand-make tokens (signed, unsigned, expired, tampered)
// and for accounts created without a login.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';

const b64url = (part) => Buffer.from(typeof part === 'string' ? part : JSON.stringify(part))
  .toString('base64url');

/**
 * Crafts a compact JWT. With the default header it is HS256-signed with `secret`;
 * with `{alg: 'none'}` the signature part is left empty (an unsigned token).
 */
export function craftJwt(payload, secret, header = { alg: 'HS256', typ: 'JWT' }) {
  const signingInput = `${b64url(header)}.${b64url(payload)}`;
  if (header.alg === 'none') return `${signingInput}.`;
  assert.equal(header.alg, 'HS256', 'craftJwt only signs HS256');
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}

/** Standard Courier access-token claims for `userId`, expiring `ttlSeconds` from now. */
export const accessClaims = (userId, ttlSeconds = 600) => ({
  sub: userId,
  iss: 'courier',
  exp: Math.floor(Date.now() / 1000) + ttlSeconds,
});
