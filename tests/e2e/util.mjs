// Small utilities of the end-to-end harness: sleep, `within` (a timed race), `waitFor`
// (polling) and unique names for resources and users.

import { randomBytes } from 'node:crypto';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves with `promise`'s value, or with `fallback` after `ms`; the timer is cleared
 * either way, so it never keeps the process alive after the race is decided.
 */
export function within(promise, ms, fallback = null) {
  let timer;
  return Promise.race([
    promise,
    new Promise((resolve) => { timer = setTimeout(() => resolve(fallback), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Polls `predicate` (sync or async) every `intervalMs` until it returns a truthy
 * value, which is returned. Throws after `timeoutMs`; `message` (string or
 * function, evaluated at timeout) says what was being waited for.
 */
export async function waitFor(predicate, timeoutMs = 10_000, { intervalMs = 20, message } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const what = typeof message === 'function' ? message() : (message ?? String(predicate));
      throw new Error(`waitFor timed out after ${timeoutMs} ms: ${what}`
        + (lastError ? ` (last error: ${lastError.message})` : ''));
    }
    await sleep(intervalMs);
  }
}

/** `courier_e2e_<12 hex>`: valid as a PostgreSQL identifier, vhost name and key prefix. */
export const uniqueResourceName = () => `courier_e2e_${randomBytes(6).toString('hex')}`;

/** A fresh username from `base`: 3–32 characters of [a-z0-9_.-]. */
export function uniqueUsername(base = 'user') {
  const clean = String(base).toLowerCase().replace(/[^a-z0-9_.-]/g, '').slice(0, 20) || 'user';
  return `${clean}_${randomBytes(4).toString('hex')}`;
}
