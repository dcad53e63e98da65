// Settings of the end-to-end harness: environment overrides (see README.md) and the
// password of every registered test user.

import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const envInt = (name, fallback) => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) ? v : fallback;
};

function redisMode(value) {
  const mode = (value ?? '').trim().toLowerCase() || 'single';
  if (!['single', 'cluster'].includes(mode)) throw new Error(`COURIER_E2E_REDIS must be single or cluster, got ${JSON.stringify(value)}`);
  return mode;
}

export const settings = Object.freeze({
  /** Where `api`, `worker`, `gateway` and `courier` are (a relative COURIER_BIN_DIR is relative to the cwd). */
  binDir: process.env.COURIER_BIN_DIR
    ? path.resolve(process.env.COURIER_BIN_DIR)
    : path.resolve(HERE, '../../target/debug'),
  /** Admin connection used to create and drop the per-deployment databases. */
  pgAdminUrl: process.env.COURIER_E2E_PG_ADMIN_URL
    ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres',
  /**
   * 'single' (REDIS_HOST/REDIS_PORT below) or 'cluster': every deployment that does not
   * bring a Redis of its own runs on the shared Redis Cluster of scripts/redis-cluster.sh
   * (REDIS_CLUSTER_NODES), started on demand (instances-redis-cluster.mjs).
   */
  redisMode: redisMode(process.env.COURIER_E2E_REDIS),
  redisHost: process.env.COURIER_E2E_REDIS_HOST ?? '127.0.0.1',
  redisPort: envInt('COURIER_E2E_REDIS_PORT', 6379),
  rabbitHost: process.env.COURIER_E2E_RABBITMQ_HOST ?? '127.0.0.1',
  rabbitPort: envInt('COURIER_E2E_RABBITMQ_PORT', 5672),
  rabbitUser: process.env.COURIER_E2E_RABBITMQ_USERNAME ?? 'guest',
  rabbitPassword: process.env.COURIER_E2E_RABBITMQ_PASSWORD ?? 'guest',
  rabbitmqctl: process.env.COURIER_E2E_RABBITMQCTL ?? 'rabbitmqctl',
  /** RUST_LOG given to every Courier process. */
  rustLog: process.env.COURIER_E2E_RUST_LOG ?? 'warn',
  /** Working directory of the Courier processes; default: a fresh empty temp dir (no stray .env). */
  cwd: process.env.COURIER_E2E_CWD ?? null,
  /** Stream every child's output live to stderr (otherwise printed only when a test fails). */
  verbose: ['1', 'true', 'yes'].includes((process.env.COURIER_E2E_VERBOSE ?? '').toLowerCase()),
  readyTimeoutMs: envInt('COURIER_E2E_READY_TIMEOUT_MS', 30_000),
  stopTimeoutMs: 5_000,
});

/** Password used for every registered test user (8–128 characters per the contract). */
export const PASSWORD = 'correct-horse-1';
