// End-to-end harness for Courier.
//
// A `Deployment` is an isolated Courier installation made of the built binaries
// (split: api + worker + N gateways; or the all-in-one `courier`) on its own
// PostgreSQL database, RabbitMQ vhost and Redis key prefix, all named
// `courier_e2e_<random>`, so concurrent runs and a developer's own data never
// meet. Teardown stops the processes and removes all three.
//
// Layout of this file:
//   1. settings (environment overrides)
//   2. small utilities (sleep, waitFor, unique names, JWT crafting)
//   3. infrastructure (psql, rabbitmqctl, redis-cli, free ports)
//   4. child processes (spawn, captured output, readiness, stop)
//   5. Socket.IO client with an event recorder
//   6. Deployment (lifecycle + REST helpers) and `useDeployment` for node:test
//   7. shared flows (delivery expectations, direct-chat round trip, history)

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { access, constants as fsConstants, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test as nodeTest } from 'node:test';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';

import {
  EVENTS, assertAuthResponse, assertChat, assertMessage, assertMessageEvent, assertSendAccepted,
  pickMessage,
} from './contract.mjs';

// ---------------------------------------------------------------------------
// 1. Settings
// ---------------------------------------------------------------------------

const HERE = path.dirname(fileURLToPath(import.meta.url));
const envInt = (name, fallback) => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) ? v : fallback;
};

export const settings = Object.freeze({
  /** Where `api`, `worker`, `gateway` and `courier` are (a relative COURIER_BIN_DIR is relative to the cwd). */
  binDir: process.env.COURIER_BIN_DIR
    ? path.resolve(process.env.COURIER_BIN_DIR)
    : path.resolve(HERE, '../../target/debug'),
  /** Admin connection used to create and drop the per-deployment databases. */
  pgAdminUrl: process.env.COURIER_E2E_PG_ADMIN_URL
    ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres',
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
  /** How long "nothing more arrives" is watched before counting events. */
  quietMs: envInt('COURIER_E2E_QUIET_MS', 400),
  readyTimeoutMs: envInt('COURIER_E2E_READY_TIMEOUT_MS', 30_000),
  stopTimeoutMs: 5_000,
  /** Pause after a socket's `connect` before it is handed to the test (see `connect`). */
  connectSettleMs: envInt('COURIER_E2E_CONNECT_SETTLE_MS', 50),
});

/** Password used for every registered test user (8–128 characters per the contract). */
export const PASSWORD = 'correct-horse-1';

// ---------------------------------------------------------------------------
// 2. Small utilities
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// 3. Infrastructure: PostgreSQL, RabbitMQ, Redis, ports
// ---------------------------------------------------------------------------

/** Runs a command without a shell; resolves {stdout, stderr}; rejects with a readable error. */
export function run(cmd, args, { env = process.env, cwd, timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, cwd, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        const how = err.killed ? `killed (${err.signal}, timeout ${timeoutMs} ms?)`
          : err.code === 'ENOENT' ? 'not found' : `exit ${err.code ?? err.signal}`;
        const detail = `${stderr}${stdout}`.trim() || err.message;
        reject(Object.assign(new Error(`${cmd} ${args.join(' ')}: ${how}\n${detail}`),
          { exitCode: err.code, stdout, stderr }));
      });
  });
}

const NAME_RE = /^courier_e2e_[a-z0-9_]+$/;
const checkName = (name) => assert.match(name, NAME_RE, `refusing to act on resource ${name}`);

/**
 * Where the services of a deployment are. The defaults come from `settings`
 * (the shared PostgreSQL, Redis and RabbitMQ); a deployment can point at other
 * instances (e.g. throwaway ones from instances.mjs that a test restarts) by
 * overriding any of these fields.
 */
export function serviceEndpoints(overrides = {}) {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return Object.freeze({
    pgAdminUrl: settings.pgAdminUrl,
    redisHost: settings.redisHost,
    redisPort: settings.redisPort,
    rabbitHost: settings.rabbitHost,
    rabbitPort: settings.rabbitPort,
    rabbitUser: settings.rabbitUser,
    rabbitPassword: settings.rabbitPassword,
    rabbitmqctl: settings.rabbitmqctl,
    /** Arguments put before every rabbitmqctl command, e.g. ['-n', 'node@localhost']. */
    rabbitmqctlArgs: [],
    ...defined,
  });
}

/**
 * Infrastructure helpers (psql, rabbitmqctl, redis-cli) bound to `endpoints`
 * (a `serviceEndpoints()` result). `infra` below is bound to the shared services.
 */
export function makeInfra(endpoints = serviceEndpoints()) {
  const ep = endpoints;
  const rabbitmqctl = (args) => run(ep.rabbitmqctl, [...ep.rabbitmqctlArgs, ...args]);
  const infra = {
    endpoints: ep,

    /** Runs SQL on the admin connection; returns the unaligned output. */
    async psql(sql) {
      const { stdout } = await run('psql', [ep.pgAdminUrl, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql]);
      return stdout;
    },

    /** The per-deployment DATABASE_URL: the admin URL with another database name. */
    databaseUrl(db) {
      const url = new URL(ep.pgAdminUrl);
      url.pathname = `/${db}`;
      return url.toString();
    },

    async createDatabase(db) {
      checkName(db);
      await infra.psql(`CREATE DATABASE "${db}"`);
    },

    async dropDatabase(db) {
      checkName(db);
      await infra.psql(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    },

    async databaseExists(db) {
      checkName(db);
      return (await infra.psql(`SELECT 1 FROM pg_database WHERE datname = '${db}'`)).trim() === '1';
    },

    async listDatabases() {
      const out = await infra.psql("SELECT datname FROM pg_database WHERE datname LIKE 'courier\\_e2e\\_%'");
      return out.split('\n').map((s) => s.trim()).filter(Boolean);
    },

    rabbitmqctl,

    async createVhost(vhost) {
      checkName(vhost);
      await rabbitmqctl(['-q', 'add_vhost', vhost]);
      await rabbitmqctl(['-q', 'set_permissions', '-p', vhost, ep.rabbitUser, '.*', '.*', '.*']);
    },

    async deleteVhost(vhost) {
      checkName(vhost);
      await rabbitmqctl(['-q', 'delete_vhost', vhost]);
    },

    async listVhosts() {
      const { stdout } = await rabbitmqctl(['-q', 'list_vhosts', 'name']);
      return stdout.split('\n').map((s) => s.trim()).filter((s) => s.startsWith('courier_e2e_'));
    },

    redisCli(args) {
      // A password, if any, reaches redis-cli through REDISCLI_AUTH in the environment.
      return run('redis-cli', ['-h', ep.redisHost, '-p', String(ep.redisPort), ...args]);
    },

    /** Every key starting with `prefix` (SCAN, never KEYS). */
    async redisKeys(prefix) {
      const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
      const { stdout } = await infra.redisCli(['--scan', '--pattern', pattern]);
      return stdout.split('\n').filter(Boolean);
    },

    /** Deletes every key starting with `prefix`; returns how many were deleted. */
    async deleteRedisKeys(prefix) {
      assert.match(prefix, /^courier_e2e_/, `refusing to delete Redis keys under ${prefix}`);
      let deleted = 0;
      for (let round = 0; round < 3; round++) {
        const keys = await infra.redisKeys(prefix);
        if (keys.length === 0) return deleted;
        for (let i = 0; i < keys.length; i += 500) {
          await infra.redisCli(['DEL', ...keys.slice(i, i + 500)]);
        }
        deleted += keys.length;
      }
      const left = await infra.redisKeys(prefix);
      assert.equal(left.length, 0, `Redis keys under ${prefix} keep reappearing: ${left.slice(0, 5)}`);
      return deleted;
    },
  };
  return infra;
}

/** Infrastructure helpers for the shared services (see `settings`). */
export const infra = makeInfra();

/** `n` distinct TCP ports that were free a moment ago (all held open together, then released). */
export async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const server = net.createServer();
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, resolve); // all interfaces: the port is free for 0.0.0.0 and 127.0.0.1
      });
      servers.push(server);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

// ---------------------------------------------------------------------------
// 4. Child processes
// ---------------------------------------------------------------------------

/** Keeps the last `limit` bytes written to it. */
class OutputTail {
  #chunks = [];
  #size = 0;
  constructor(limit = 1024 * 1024) { this.limit = limit; }
  push(chunk) {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size > this.limit && this.#chunks.length > 1) this.#size -= this.#chunks.shift().length;
  }
  toString(maxBytes = Infinity) {
    const text = Buffer.concat(this.#chunks).toString('utf8');
    return text.length > maxBytes ? `[...]${text.slice(-maxBytes)}` : text;
  }
}

/** Variables of Courier's configuration that must never leak in from the caller's environment. */
const COURIER_ENV_RE = /^(DATABASE_|REDIS_|RABBITMQ_|JWT_|CHAT_|GATEWAY_|WORKER_|CORS_|REFRESH_TOKEN_|PORT$|HOST$|RUST_LOG$)/;

/** The caller's environment without any Courier configuration. */
function cleanEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !COURIER_ENV_RE.test(k)));
}

/** One Courier process: its output is captured, its exit observed, and it can be stopped. */
export class CourierProcess {
  constructor(name, binary, args, { env, cwd, healthUrl }) {
    this.name = name;
    this.healthUrl = healthUrl; // base URL serving /healthz and /readyz
    this.stdout = new OutputTail();
    this.stderr = new OutputTail();
    this.exit = null; // {code, signal, error?} once exited
    /** Set when a test stops or kills the process on purpose (`kill`): its exit is no failure. */
    this.expectedExit = false;
    this.child = spawn(binary, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of ['stdout', 'stderr']) {
      this.child[stream].on('data', (chunk) => {
        this[stream].push(chunk);
        if (settings.verbose) process.stderr.write(prefixLines(`[${name}] `, chunk.toString('utf8')));
      });
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => resolve(this.exit ??= { code, signal }));
      this.child.once('error', (error) => resolve(this.exit ??= { code: null, signal: null, error }));
    });
  }

  get running() { return this.exit === null; }

  describeExit() {
    const e = this.exit;
    if (!e) return 'running';
    if (e.error) return `failed to start: ${e.error.message}`;
    return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
  }

  /** Captured output for diagnostics (tails). */
  logs(maxBytes = 8192) {
    return [`----- ${this.name} (${this.describeExit()}) stderr -----`, this.stderr.toString(maxBytes),
      `----- ${this.name} stdout -----`, this.stdout.toString(maxBytes)].join('\n');
  }

  /** Polls GET /readyz every 100 ms until it answers 200; fails early if the process exits. */
  async waitReady(timeoutMs = settings.readyTimeoutMs) {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new Error(`${this.name} ${this.describeExit()} before it became ready\n${this.logs()}`);
      }
      try {
        const res = await fetch(`${this.healthUrl}/readyz`, { signal: AbortSignal.timeout(1000) });
        const body = await res.text();
        if (res.status === 200) return;
        last = `${res.status} ${body.slice(0, 300)}`;
      } catch (err) {
        last = err.cause?.code ?? err.message;
      }
      await sleep(100);
    }
    throw new Error(`${this.name} not ready after ${timeoutMs} ms (last /readyz: ${last})\n${this.logs()}`);
  }

  /** OS process id (null if it failed to start). */
  get pid() { return this.child.pid ?? null; }

  /**
   * Sends `signal` on purpose (fault injection: 'SIGKILL' for a crash, 'SIGTERM' for a
   * graceful stop); the exit then does not fail the test. Resolves with the exit, or
   * with null if it has not exited after `timeoutMs`.
   */
  async kill(signal = 'SIGKILL', timeoutMs = 30_000) {
    this.expectedExit = true;
    if (!this.running) return this.exit;
    this.child.kill(signal);
    return within(this.exited, timeoutMs);
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves with the exit. */
  async stop(timeoutMs = settings.stopTimeoutMs) {
    if (!this.running) return this.exit;
    this.child.kill('SIGTERM');
    const exit = await within(this.exited, timeoutMs);
    if (exit) return exit;
    process.stderr.write(`[e2e] ${this.name} ignored SIGTERM for ${timeoutMs} ms; sending SIGKILL\n`);
    this.child.kill('SIGKILL');
    return this.exited;
  }
}

function prefixLines(prefix, text) {
  return text.replace(/^(?=.)/gm, prefix);
}

// ---------------------------------------------------------------------------
// 5. Socket.IO client
// ---------------------------------------------------------------------------

/** A connected Socket.IO client of namespace /chat that records every event it receives. */
export class ChatClient {
  constructor(socket, label) {
    this.socket = socket;
    this.label = label;
    /** Every server -> client event, in arrival order: {event, payload, at}. */
    this.events = [];
    socket.onAny((event, payload) => this.events.push({ event, payload, at: Date.now() }));
  }

  /**
   * Payloads of `event` received so far, optionally only those about `chatId`
   * and/or whose `message.clientMessageId` is `clientMessageId`.
   */
  received(event, { chatId, clientMessageId } = {}) {
    return this.events
      .filter((e) => e.event === event)
      .map((e) => e.payload)
      .filter((p) => chatId === undefined || p?.chatId === chatId)
      .filter((p) => clientMessageId === undefined || p?.message?.clientMessageId === clientMessageId);
  }

  count(event, filter) { return this.received(event, filter).length; }

  /** The `message` of each `chat.message.new` / `.saved` payload received, in arrival order. */
  messages(event, filter) { return this.received(event, filter).map((p) => p?.message); }

  /** Engine.IO transport currently in use: 'polling' or 'websocket'. */
  get transport() { return this.socket.io.engine?.transport?.name; }

  get connected() { return this.socket.connected; }

  /** Emits `event` and resolves with the acknowledgement payload (rejects after `timeoutMs`). */
  ack(event, payload, timeoutMs = 5000) {
    return this.socket.timeout(timeoutMs).emitWithAck(event, payload);
  }

  close() { this.socket.close(); }
}

/**
 * Connects to namespace /chat of the gateway at `url` (path /socket.io) and
 * resolves with a ChatClient on `connect`; rejects with the `connect_error`
 * error (its `.message` is what the server refused with).
 *
 *  - `via`: where the token goes: 'auth' (auth.token), 'header'
 *    (Authorization: Bearer), 'query' (?token=). `token == null` sends none.
 *  - `auth`, `extraHeaders`, `query`: merged in after the token, to build
 *    unusual handshakes (e.g. two tokens in different places).
 *  - `transports`: default ['websocket']; pass ['polling', 'websocket'] for the
 *    browser default (polling first, then upgrade) or ['polling'].
 *
 * After `connect` it waits `settleMs`: the server may finish registering the
 * socket (rooms, subscriptions) just after it sent the CONNECT packet, and the
 * contract has no "ready" event to wait for instead.
 */
export function connect(url, token, {
  transports = ['websocket'], via = 'auth', auth = {}, extraHeaders = {}, query = {},
  label = 'socket', timeoutMs = 10_000, settleMs = settings.connectSettleMs,
} = {}) {
  const handshake = { auth: {}, extraHeaders: {}, query: {} };
  if (token != null) {
    if (via === 'auth') handshake.auth.token = token;
    else if (via === 'header') handshake.extraHeaders.authorization = `Bearer ${token}`;
    else if (via === 'query') handshake.query.token = token;
    else throw new Error(`unknown token placement ${via}`);
  }
  Object.assign(handshake.auth, auth);
  Object.assign(handshake.extraHeaders, extraHeaders);
  Object.assign(handshake.query, query);

  const socket = io(`${url}/chat`, {
    path: '/socket.io',
    transports,
    ...handshake,
    reconnection: false,
    forceNew: true,
    timeout: timeoutMs,
  });
  const client = new ChatClient(socket, label);

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => settle(new Error(`${label}: no connect within ${timeoutMs} ms`)),
      timeoutMs + 1000);
    const settle = (err) => {
      clearTimeout(timer);
      socket.off('connect', onConnect).off('connect_error', onError);
      if (err) {
        socket.close(); // also releases the Engine.IO connection of a namespace-level refusal
        reject(err);
      } else {
        sleep(settleMs).then(() => resolve(client));
      }
    };
    const onConnect = () => settle(null);
    const onError = (err) => settle(err);
    socket.once('connect', onConnect).once('connect_error', onError);
  });
}

// ---------------------------------------------------------------------------
// 6. Deployment
// ---------------------------------------------------------------------------

/** Like Promise.all, but waits for every promise before rejecting with the first failure. */
async function settleAll(promises) {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => r.value);
}

/** Deployments not yet torn down, for the last-resort handlers below. */
const live = new Set();

process.once('exit', () => {
  // Synchronous last resort (e.g. an uncaught exception): never leave servers running.
  for (const d of live) {
    for (const p of d.processes) if (p.running) p.child.kill('SIGKILL');
    process.stderr.write(`[e2e] deployment ${d.id} was not torn down; its database, vhost and `
      + `Redis keys remain (remove them with: npm run sweep)\n`);
  }
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await Promise.allSettled([...live].map((d) => d.stop()));
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  });
}

export class Deployment {
  /**
   * @param {object} options
   * @param {'split'|'all-in-one'} [options.mode] split: api + worker + gateways; all-in-one: `courier`
   * @param {number} [options.gateways] gateway instances in split mode (default 1)
   * @param {number} [options.workers] worker processes in split mode (default 1); with one it is
   *   named `worker`, with more `worker-1`, `worker-2`, ...
   * @param {object} [options.env] extra environment for every process
   * @param {object|function} [options.services] where PostgreSQL, Redis and RabbitMQ are (fields
   *   of `serviceEndpoints`), or a function returning them, called at `start()` (so they can come
   *   from instances started in a hook); default: the shared services of `settings`
   */
  constructor({ mode = 'split', gateways = 1, workers = 1, env = {}, services = {} } = {}) {
    assert.ok(['split', 'all-in-one'].includes(mode), `unknown mode ${mode}`);
    this.mode = mode;
    this.gatewayCount = mode === 'split' ? gateways : 1;
    this.workerCount = mode === 'split' ? workers : 0;
    this.extraEnv = env;
    this.servicesOption = services;
    this.infra = infra; // replaced at start() when `services` points elsewhere
    this.id = uniqueResourceName();
    this.database = this.id;
    this.vhost = this.id;
    this.redisPrefix = `${this.id}:`;
    this.jwtSecret = randomBytes(36).toString('base64url'); // 48 characters
    this.ports = {}; // PORT, WORKER_PORT, GATEWAY_PORT once picked
    this.processes = [];
    this.clients = new Set(); // open ChatClients made through this.connect
    this.created = { database: false, vhost: false, cwd: null };
    this.apiUrl = null;
    this.workerUrl = null;
    this.gatewayUrls = [];
    this.workerUrls = [];
    this.stopped = null;
  }

  binary(name) { return path.join(settings.binDir, name); }

  /** The environment every process of this deployment gets (contract names). */
  env(overrides = {}) {
    const ep = this.infra.endpoints;
    return {
      ...cleanEnv(),
      DATABASE_URL: this.databaseUrl,
      REDIS_HOST: ep.redisHost,
      REDIS_PORT: String(ep.redisPort),
      REDIS_KEY_PREFIX: this.redisPrefix,
      RABBITMQ_HOST: ep.rabbitHost,
      RABBITMQ_PORT: String(ep.rabbitPort),
      RABBITMQ_USERNAME: ep.rabbitUser,
      RABBITMQ_PASSWORD: ep.rabbitPassword,
      RABBITMQ_VHOST: this.vhost,
      JWT_SECRET: this.jwtSecret,
      JWT_EXPIRATION_TIME: '3600',
      RUST_LOG: settings.rustLog,
      RUST_BACKTRACE: '1',
      ...this.ports,
      ...this.extraEnv,
      ...overrides,
    };
  }

  /** Creates the database, vhost and working directory, migrates, starts and waits for readiness. */
  /** The deployment's DATABASE_URL. */
  get databaseUrl() { return this.infra.databaseUrl(this.database); }

  /** Runs SQL on the deployment's own database (psql, unaligned, tuples only); resolves stdout. */
  async sql(query) {
    const { stdout } = await run('psql', [this.databaseUrl, '-v', 'ON_ERROR_STOP=1', '-qAtc', query]);
    return stdout;
  }

  /** Runs a query returning one JSON value (e.g. `SELECT json_agg(...)`) and parses it. */
  async sqlJson(query) {
    const out = (await this.sql(query)).trim();
    return out === '' ? null : JSON.parse(out);
  }

  async start() {
    live.add(this);
    try {
      const services = typeof this.servicesOption === 'function'
        ? await this.servicesOption() : this.servicesOption;
      if (services && Object.keys(services).length) this.infra = makeInfra(serviceEndpoints(services));
      const needed = this.mode === 'split' ? ['api', 'worker', 'gateway', 'courier'] : ['courier'];
      for (const name of needed) {
        await access(this.binary(name), fsConstants.X_OK).catch(() => {
          throw new Error(`missing binary ${this.binary(name)}: build with \`cargo build --bins\` `
            + 'or point COURIER_BIN_DIR at the directory holding api, worker, gateway and courier');
        });
      }

      // Independent and each a little slow (rabbitmqctl boots an Erlang VM): in parallel,
      // all settled before going on so a failure never races the teardown.
      const [, , , ports] = await settleAll([
        (async () => { this.created.cwd = settings.cwd ?? await mkdtemp(path.join(os.tmpdir(), `${this.id}-`)); })(),
        this.infra.createDatabase(this.database).then(() => { this.created.database = true; }),
        this.infra.createVhost(this.vhost).then(() => { this.created.vhost = true; }),
        freePorts(1 + Math.max(1, this.workerCount) + this.gatewayCount),
      ]);
      const [port, ...rest] = ports;
      const workerPorts = rest.slice(0, Math.max(1, this.workerCount));
      const gatewayPorts = rest.slice(workerPorts.length);
      const workerPort = workerPorts[0];
      this.ports = {
        PORT: String(port),
        WORKER_PORT: String(workerPort),
        GATEWAY_PORT: String(gatewayPorts[0]),
      };

      await run(this.binary('courier'), ['migrate'], { env: this.env(), cwd: this.created.cwd })
        .catch((err) => { throw new Error(`courier migrate failed: ${err.message}`); });

      const url = (p) => `http://127.0.0.1:${p}`;
      if (this.mode === 'split') {
        this.apiUrl = url(port);
        this.workerUrl = url(workerPort);
        this.workerUrls = workerPorts.map(url);
        this.gatewayUrls = gatewayPorts.map(url);
        this.spawn('api', 'api', this.apiUrl);
        workerPorts.forEach((wp, i) => this.spawn(workerPorts.length === 1 ? 'worker' : `worker-${i + 1}`,
          'worker', url(wp), { WORKER_PORT: String(wp) }));
        gatewayPorts.forEach((gp, i) => this.spawn(`gateway-${i + 1}`, 'gateway', url(gp), {
          GATEWAY_PORT: String(gp),
          GATEWAY_ID: `${this.id}-gw${i + 1}`,
        }));
      } else {
        this.apiUrl = url(port);
        this.gatewayUrls = [this.apiUrl];
        this.spawn('courier', 'courier', this.apiUrl, { GATEWAY_ID: `${this.id}-gw1` });
      }
      await Promise.all(this.processes.map((p) => p.waitReady()));
      return this;
    } catch (err) {
      await this.stop().catch((e) => process.stderr.write(`[e2e] teardown after failed start: ${e.message}\n`));
      throw err;
    }
  }

  spawn(name, binary, healthUrl, env = {}) {
    const proc = new CourierProcess(name, this.binary(binary), [],
      { env: this.env(env), cwd: this.created.cwd, healthUrl });
    proc.binaryName = binary;
    proc.extraEnv = env;
    this.processes.push(proc);
    return proc;
  }

  /** The (most recently started) process called `name`, e.g. 'api', 'worker-2', 'gateway-1'. */
  process(name) {
    const proc = this.processes.findLast((p) => p.name === name);
    assert.ok(proc, `no process ${name} in deployment ${this.id} (${this.processes.map((p) => p.name).join(', ')})`);
    return proc;
  }

  /**
   * Starts one more worker (split mode) on a fresh WORKER_PORT, named `worker-<n>`, and waits
   * until it is ready. Resolves with the CourierProcess.
   */
  async addWorker() {
    assert.equal(this.mode, 'split', 'addWorker needs split mode');
    const [wp] = await freePorts(1);
    const n = this.processes.filter((p) => p.binaryName === 'worker').length + 1;
    const workerUrl = `http://127.0.0.1:${wp}`;
    this.workerUrls.push(workerUrl);
    const proc = this.spawn(`worker-${n}`, 'worker', workerUrl, { WORKER_PORT: String(wp) });
    await proc.waitReady();
    return proc;
  }

  /**
   * Starts process `name` again (same binary, port and environment) after it exited, under
   * the same name, and waits until it is ready. Resolves with the new CourierProcess.
   */
  async restart(name) {
    const old = this.process(name);
    if (old.running) await old.kill('SIGTERM');
    const proc = this.spawn(name, old.binaryName, old.healthUrl, old.extraEnv);
    await proc.waitReady();
    return proc;
  }

  /** Stops everything and removes the database, vhost, Redis keys and working directory. Idempotent. */
  stop() {
    this.stopped ??= this.#teardown();
    return this.stopped;
  }

  async #teardown() {
    const errors = [];
    const attempt = async (what, fn) => {
      try { await fn(); } catch (err) { errors.push(new Error(`${what}: ${err.message}`)); }
    };
    for (const client of this.clients) client.close();
    this.clients.clear();
    await Promise.all(this.processes.map((p) => p.stop()));
    // Nothing uses them any more: remove all in parallel.
    await Promise.all([
      this.created.database && attempt('drop database', () => this.infra.dropDatabase(this.database)),
      this.created.vhost && attempt('delete vhost', () => this.infra.deleteVhost(this.vhost)),
      attempt('delete Redis keys', () => this.infra.deleteRedisKeys(this.redisPrefix)),
      this.created.cwd && !settings.cwd
        && attempt('remove working directory', () => rm(this.created.cwd, { recursive: true, force: true })),
    ]);
    live.delete(this);
    if (errors.length) throw new AggregateError(errors, `teardown of ${this.id} incomplete: ${errors.map((e) => e.message).join('; ')}`);
  }

  /** Prints the captured output of every process (used when a test fails). */
  dumpLogs(reason = '') {
    process.stderr.write(`\n[e2e] logs of deployment ${this.id} ${reason}\n`);
    for (const p of this.processes) process.stderr.write(`${p.logs()}\n`);
  }

  /** Fails if any process of the deployment has exited (other than those a test killed on purpose). */
  assertAlive() {
    const dead = this.processes.filter((p) => !p.running && !p.expectedExit);
    assert.equal(dead.length, 0, `processes died: ${dead.map((p) => `${p.name} ${p.describeExit()}`).join(', ')}`);
  }

  /**
   * node:test `test` bound to this deployment: prints the processes' logs when
   * the test fails, fails it if a process died meanwhile, and closes the sockets
   * the test opened.
   */
  test(name, options, fn) {
    if (typeof options === 'function') [options, fn] = [{}, options];
    return nodeTest(name, { timeout: 60_000, ...options }, async (t) => {
      const openBefore = new Set(this.clients);
      try {
        await fn(t);
        this.assertAlive();
      } catch (err) {
        this.dumpLogs(`after the failure of "${name}"`);
        throw err;
      } finally {
        for (const c of this.clients) {
          if (!openBefore.has(c)) { c.close(); this.clients.delete(c); }
        }
      }
    });
  }

  /**
   * Memoizes `setup(this)` for several tests of one file: it runs on first call
   * (after start) and every later call gets the same promise. Use it instead of
   * another top-level `before` hook: Node 20 runs top-level `before` hooks
   * concurrently, so one could run before the deployment is up.
   */
  shared(setup) {
    let promise;
    return () => (promise ??= setup(this));
  }

  // --- REST ---------------------------------------------------------------

  /**
   * One HTTP request to the REST API. `body` is sent as JSON; `rawBody` as is
   * (set the content-type yourself). Resolves {status, body, headers} where
   * body is parsed JSON when the response says so, else text (null when empty).
   */
  async api(method, urlPath, { token, body, headers = {}, rawBody, baseUrl = this.apiUrl } = {}) {
    const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    if (token) h.authorization = `Bearer ${token}`;
    let payload;
    if (rawBody !== undefined) payload = rawBody;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      h['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${baseUrl}${urlPath}`,
      { method, headers: h, body: payload, signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    let parsed = text === '' ? null : text;
    if (text && (res.headers.get('content-type') ?? '').includes('json')) {
      try { parsed = JSON.parse(text); } catch { /* keep the text */ }
    }
    return { status: res.status, body: parsed, headers: Object.fromEntries(res.headers) };
  }

  /** Registers a fresh user; resolves {user, accessToken, refreshToken, expiresIn, username, password}. */
  async register(base = 'user') {
    const username = uniqueUsername(base);
    const res = await this.api('POST', '/auth/register',
      { body: { username, password: PASSWORD, displayName: base } });
    assert.equal(res.status, 201, `register ${username}: ${res.status} ${JSON.stringify(res.body)}`);
    assertAuthResponse(res.body, { username });
    return { ...res.body, username, password: PASSWORD };
  }

  /** Registers one user per name, in parallel. */
  registerAll(...names) { return Promise.all(names.map((n) => this.register(n))); }

  /** Creates (201) or gets (200) the direct chat of the caller and `otherId`. */
  async createDirect(token, otherId) {
    const res = await this.api('POST', '/chats',
      { token, body: { type: 'direct', participantIds: [otherId] } });
    assert.ok([200, 201].includes(res.status), `create direct chat: ${res.status} ${JSON.stringify(res.body)}`);
    assertChat(res.body, { type: 'direct' });
    assert.ok(res.body.participants.some((p) => p.userId === otherId), 'direct chat includes the other user');
    return res.body;
  }

  /** Creates a group chat titled `title` with `participantIds` (the caller becomes owner). */
  async createGroup(token, title, participantIds) {
    const res = await this.api('POST', '/chats',
      { token, body: { type: 'group', title, participantIds } });
    assert.equal(res.status, 201, `create group chat: ${res.status} ${JSON.stringify(res.body)}`);
    assertChat(res.body, { type: 'group', title });
    return res.body;
  }

  /**
   * POST /chats/:chatId/messages and asserts the 202 body; resolves
   * {brokerMessageId, clientMessageId, content}.
   */
  async send(token, chatId, content, clientMessageId = randomUUID()) {
    const res = await this.sendRaw(token, chatId, content, clientMessageId);
    assertSendAccepted(res, clientMessageId);
    return { brokerMessageId: res.body.brokerMessageId, clientMessageId, content };
  }

  /** POST /chats/:chatId/messages without assertions; resolves the raw response. */
  sendRaw(token, chatId, content, clientMessageId = randomUUID()) {
    return this.api('POST', `/chats/${chatId}/messages`, { token, body: { content, clientMessageId } });
  }

  /** GET /chats/:chatId/messages with `query` (limit/before/after); asserts 200. */
  async history(token, chatId, query = {}) {
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
    const res = await this.api('GET', `/chats/${chatId}/messages${qs ? `?${qs}` : ''}`, { token });
    assert.equal(res.status, 200, `history: ${res.status} ${JSON.stringify(res.body)}`);
    assert.ok(Array.isArray(res.body?.messages), `history body: ${JSON.stringify(res.body)}`);
    assert.equal(typeof res.body.hasMore, 'boolean', 'history hasMore');
    return res.body;
  }

  /** GET /chats; asserts 200 and resolves the array of chats (each with unreadCount). */
  async listChats(token) {
    const res = await this.api('GET', '/chats', { token });
    assert.equal(res.status, 200, `list chats: ${res.status} ${JSON.stringify(res.body)}`);
    assert.ok(Array.isArray(res.body?.chats), `list chats body: ${JSON.stringify(res.body)}`);
    return res.body.chats;
  }

  /** The caller's entry for `chatId` in GET /chats. */
  async chatEntry(token, chatId) {
    const entry = (await this.listChats(token)).find((c) => c.id === chatId);
    assert.ok(entry, `chat ${chatId} missing from GET /chats`);
    assertChat(entry);
    assert.ok(Number.isInteger(entry.unreadCount), `unreadCount, got ${JSON.stringify(entry.unreadCount)}`);
    return entry;
  }

  // --- Sockets --------------------------------------------------------------

  /** URL of gateway instance `i` (0-based); in all-in-one mode always the single port. */
  gateway(i = 0) {
    assert.ok(i < this.gatewayUrls.length, `deployment has ${this.gatewayUrls.length} gateway(s)`);
    return this.gatewayUrls[i];
  }

  /** `connect` to gateway `gateway` (index or URL); the socket is closed at the end of the test. */
  async connect(gateway, token, options = {}) {
    const url = typeof gateway === 'number' ? this.gateway(gateway) : gateway;
    const client = await connect(url, token, options);
    this.clients.add(client);
    return client;
  }

  /**
   * Connects one socket of `account` (a `register` result) per entry of
   * `gateways` (gateway indexes; repeat an index for two sockets on one
   * instance). Labels read like "bob@gw2#1" in failure messages.
   */
  connectSockets(account, gateways, options = {}) {
    const name = account.user?.displayName ?? account.username;
    return Promise.all(gateways.map((g, i) => this.connect(g, account.accessToken,
      { label: `${name}@gw${g + 1}#${i + 1}`, ...options })));
  }
}

/**
 * Registers node:test hooks that start a deployment before the file's tests
 * and tear it down after them (even when start or a test failed).
 */
export function useDeployment(options = {}) {
  const deployment = new Deployment(options);
  before(() => deployment.start(), { timeout: 120_000 });
  after(() => deployment.stop(), { timeout: 60_000 });
  return deployment;
}

// ---------------------------------------------------------------------------
// 7. Shared flows
// ---------------------------------------------------------------------------

/**
 * Waits until the message `sent` ({clientMessageId, content}) was delivered,
 * then watches `quietMs` longer, and asserts exact counts:
 *  - every socket in `recipients` got exactly one `chat.message.new` and no `saved`;
 *  - every socket in `senders` (the sender's own sockets) got exactly one
 *    `chat.message.saved` and no `new`;
 *  - every socket in `others` got neither.
 * Each payload must be {chatId, message: Message} with the expected fields, and
 * all copies must be identical. Resolves with the delivered Message.
 */
export async function expectDelivery({
  chatId, senderId, sent, sequence, senders = [], recipients = [], others = [],
  timeoutMs = 10_000, quietMs = settings.quietMs,
}) {
  const filter = { clientMessageId: sent.clientMessageId };
  const missing = () => [
    ...recipients.filter((c) => c.count(EVENTS.NEW, filter) === 0).map((c) => `${c.label}: ${EVENTS.NEW}`),
    ...senders.filter((c) => c.count(EVENTS.SAVED, filter) === 0).map((c) => `${c.label}: ${EVENTS.SAVED}`),
  ];
  await waitFor(() => missing().length === 0, timeoutMs,
    { message: () => `message "${sent.content}" not received by ${missing().join(', ')}` });
  await sleep(quietMs);

  const expectCounts = (clients, news, saveds) => {
    for (const c of clients) {
      assert.equal(c.count(EVENTS.NEW, filter), news, `${c.label}: number of ${EVENTS.NEW} for "${sent.content}"`);
      assert.equal(c.count(EVENTS.SAVED, filter), saveds, `${c.label}: number of ${EVENTS.SAVED} for "${sent.content}"`);
    }
  };
  expectCounts(recipients, 1, 0);
  expectCounts(senders, 0, 1);
  expectCounts(others, 0, 0);

  const copies = [
    ...recipients.flatMap((c) => c.received(EVENTS.NEW, filter)),
    ...senders.flatMap((c) => c.received(EVENTS.SAVED, filter)),
  ];
  const expected = { chatId, senderId, clientMessageId: sent.clientMessageId, content: sent.content, sequence };
  for (const payload of copies) assertMessageEvent(payload, expected);
  for (const payload of copies.slice(1)) {
    assert.deepEqual(payload, copies[0], 'every socket must receive the same message');
  }
  return copies[0].message;
}

/** Asserts that GET /chats/:chatId/messages (newest page) equals `messages` exactly, oldest first. */
export async function expectHistory(d, token, chatId, messages) {
  const page = await d.history(token, chatId, { limit: 100 });
  for (const m of page.messages) assertMessage(m, { chatId });
  assert.deepEqual(page.messages.map(pickMessage), messages.map(pickMessage),
    'history must hold exactly the delivered messages');
  assert.equal(page.hasMore, false, 'history hasMore');
  return page;
}

/**
 * The basic scenario against a fresh pair of users: A and B each connect one
 * socket (with `transports`), A sends a message over REST in their direct chat,
 * B gets `chat.message.new`, A gets `chat.message.saved` (and no `new`), the
 * history shows it. With a WebSocket-capable transport list the sockets must
 * end up on WebSocket (upgrade); with ['polling'] they must stay on polling.
 * Resolves {a, b, chat, message}.
 */
export async function directRoundTrip(d, { transports = ['websocket'], gateway = 0 } = {}) {
  const [a, b] = await d.registerAll('alice', 'bob');
  const chat = await d.createDirect(a.accessToken, b.user.id);
  assertChat(chat, { type: 'direct', participantIds: [a.user.id, b.user.id] });

  const aSocket = await d.connect(gateway, a.accessToken, { transports, label: 'alice' });
  const bSocket = await d.connect(gateway, b.accessToken, { transports, label: 'bob' });

  const sent = await d.send(a.accessToken, chat.id, `hello over ${transports.join('+')}`);
  const message = await expectDelivery({
    chatId: chat.id, senderId: a.user.id, sent, sequence: 1, senders: [aSocket], recipients: [bSocket],
  });

  const expectedTransport = transports.includes('websocket') ? 'websocket' : 'polling';
  for (const s of [aSocket, bSocket]) {
    await waitFor(() => s.transport === expectedTransport, 5000,
      { message: () => `${s.label} transport is ${s.transport}, expected ${expectedTransport}` });
    assert.ok(s.connected, `${s.label} still connected`);
  }

  await expectHistory(d, a.accessToken, chat.id, [message]);
  await expectHistory(d, b.accessToken, chat.id, [message]);
  return { a, b, chat, message };
}
