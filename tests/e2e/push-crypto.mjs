// Cryptography of the push test receivers (push-receivers.mjs), with node:crypto only:
// base64url, P-256 keys as a browser (`PushSubscription`) and a VAPID server hold them,
// RFC 8291 `aes128gcm` decryption (the user agent's side), and compact JWTs signed and
// verified with ES256 (RFC 8292 VAPID) or RS256 (a Google service-account assertion).

import {
  createECDH, createDecipheriv, createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync,
  randomBytes, sign, verify,
} from 'node:crypto';

const B64URL_RE = /^[A-Za-z0-9_-]*$/;

export const b64u = (buf) => Buffer.from(buf).toString('base64url');

/** Strict base64url decoding (Node's own decoder skips characters it does not know). */
export function unb64u(text, what = 'value') {
  if (typeof text !== 'string' || !B64URL_RE.test(text)) throw new Error(`${what} is not base64url`);
  return Buffer.from(text, 'base64url');
}

/**
 * A fresh P-256 key pair for PUSH_VAPID_PUBLIC_KEY / PUSH_VAPID_PRIVATE_KEY: `publicKey` the
 * 65-byte uncompressed point, `privateKey` the 32-byte scalar, both base64url.
 */
export function vapidKeys() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    publicKey: b64u(Buffer.concat([Buffer.from([4]), unb64u(jwk.x), unb64u(jwk.y)])),
    privateKey: jwk.d,
  };
}

/** A KeyObject of the uncompressed P-256 point `raw` (65 bytes); throws if it is not one. */
export function p256PublicKey(raw) {
  if (raw.length !== 65 || raw[0] !== 4) throw new Error(`not an uncompressed P-256 point (${raw.length} bytes)`);
  return createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: b64u(raw.subarray(1, 33)), y: b64u(raw.subarray(33)) },
    format: 'jwk',
  });
}

/** A signing KeyObject from base64url VAPID keys (as `vapidKeys` returns them). */
export function p256PrivateKey({ publicKey, privateKey }) {
  const raw = unb64u(publicKey);
  return createPrivateKey({
    key: { kty: 'EC', crv: 'P-256', d: privateKey, x: b64u(raw.subarray(1, 33)), y: b64u(raw.subarray(33)) },
    format: 'jwk',
  });
}

/** What a browser makes for a push subscription: an ECDH P-256 key pair and a 16-byte auth secret. */
export function userAgentKeys() {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { ecdh, auth: randomBytes(16) };
}

const info = (label) => Buffer.from(`Content-Encoding: ${label}\0`, 'latin1');

/**
 * Decrypts an RFC 8291 Web Push message (RFC 8188 `aes128gcm`, one record) with the user
 * agent's `ecdh` (private key) and `auth` secret; resolves the plaintext Buffer. Throws,
 * saying why, on anything a browser would refuse: a short header, a keyid that is not the
 * sender's 65-byte public key, more than one record, a failed tag, no last-record delimiter.
 */
export function decryptAes128gcm(body, { ecdh, auth }) {
  if (body.length < 21) throw new Error(`body of ${body.length} bytes is shorter than the aes128gcm header`);
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20];
  if (idlen !== 65) throw new Error(`keyid of ${idlen} bytes: RFC 8291 puts the sender's 65-byte public key there`);
  const asPublic = body.subarray(21, 21 + idlen);
  if (asPublic[0] !== 4) throw new Error('keyid is not an uncompressed P-256 point');
  if (rs < 18) throw new Error(`record size ${rs} below the minimum of 18`);
  const record = body.subarray(21 + idlen);
  if (record.length < 17) throw new Error(`record of ${record.length} bytes cannot hold a tag and a delimiter`);
  if (record.length > rs) {
    throw new Error(`ciphertext of ${record.length} bytes exceeds rs ${rs}: RFC 8291 §4 allows one record only`);
  }

  const uaPublic = ecdh.getPublicKey();
  let ecdhSecret;
  try { ecdhSecret = ecdh.computeSecret(asPublic); } catch (err) {
    throw new Error(`sender key is not a P-256 point: ${err.message}`);
  }
  // RFC 8291 §3.3-3.4: IKM from the ECDH secret and the auth secret, then RFC 8188 §2.2.
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0', 'latin1'), uaPublic, asPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, info('aes128gcm'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, info('nonce'), 12)); // record 0: XOR 0

  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  let padded;
  try {
    padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
  } catch {
    throw new Error('AES-GCM authentication failed (wrong keys or altered body)');
  }
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end -= 1;
  if (end < 0 || padded[end] !== 2) throw new Error('no last-record delimiter (0x02) after the plaintext');
  return padded.subarray(0, end);
}

const ALGS = {
  ES256: { sigLength: 64, opts: (key) => ({ key, dsaEncoding: 'ieee-p1363' }) },
  RS256: { sigLength: null, opts: (key) => key },
};

/** Signs a compact JWT with `alg` (ES256: a P-256 KeyObject; RS256: an RSA KeyObject or PEM). */
export function signJwt(claims, key, alg, extraHeader = {}) {
  const header = { typ: 'JWT', alg, ...extraHeader };
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  return `${input}.${b64u(sign('sha256', Buffer.from(input), ALGS[alg].opts(key)))}`;
}

/**
 * Verifies a compact JWT's `alg` and signature with `key`; resolves {header, claims}.
 * Throws, saying why, on a malformed token, another algorithm or a bad signature.
 */
export function verifyJwt(token, key, alg) {
  const parts = String(token).split('.');
  if (parts.length !== 3) throw new Error('JWT is not three base64url parts');
  let header;
  let claims;
  try {
    header = JSON.parse(unb64u(parts[0], 'JWT header').toString('utf8'));
    claims = JSON.parse(unb64u(parts[1], 'JWT claims').toString('utf8'));
  } catch (err) {
    throw new Error(`JWT header or claims unreadable: ${err.message}`);
  }
  if (header.alg !== alg) throw new Error(`JWT alg ${JSON.stringify(header.alg)}, expected ${alg}`);
  const sig = unb64u(parts[2], 'JWT signature');
  if (ALGS[alg].sigLength && sig.length !== ALGS[alg].sigLength) {
    throw new Error(`${alg} signature of ${sig.length} bytes, expected ${ALGS[alg].sigLength}`);
  }
  if (!verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), ALGS[alg].opts(key), sig)) {
    throw new Error(`JWT ${alg} signature does not verify`);
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new Error('JWT claims not an object');
  return { header, claims };
}
