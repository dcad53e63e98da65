// Deployment: an isolated Courier installation (split: api + worker(s) + N gateways; or
// the all-in-one `courier`) on its own database, vhost and Redis key prefix; its
// lifecycle (start, addWorker, restart, teardown), `d.test` / `d.shared` for node:test,
// sockets through `d.connect`, and `useDeployment`. The REST helpers come from
// `RestClient` (rest.mjs).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, constants as fsConstants, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test as nodeTest } from 'node:test';

import { connect } from './client.mjs';
import { freePorts, infra, makeInfra, run, serviceEndpoints } from './infra.mjs';
import { sharedRedisCluster } from './instances-redis-cluster.mjs';
import { CourierProcess, cleanEnv } from './processes.mjs';
import { RestClient } from './rest.mjs';
import { settings } from './settings.mjs';
import { uniqueResourceName } from './util.mjs';

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

export class Deployment extends RestClient {
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
    super();
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
    const redis = ep.redisClusterNodes
      ? { REDIS_CLUSTER_NODES: ep.redisClusterNodes }
      : { REDIS_HOST: ep.redisHost, REDIS_PORT: String(ep.redisPort) };
    return {
      ...cleanEnv(),
      DATABASE_URL: this.databaseUrl,
      ...redis,
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

  /** Creates the database, vhost and working directory, migrates, starts and waits for readiness. */
  async start() {
    live.add(this);
    try {
      let services = typeof this.servicesOption === 'function'
        ? await this.servicesOption() : this.servicesOption;
      if (this.onSharedRedisCluster(services)) {
        services = { ...services, ...(await sharedRedisCluster()).services };
      }
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

  /**
   * Whether this deployment runs on the shared Redis Cluster: COURIER_E2E_REDIS=cluster,
   * and neither its services nor its environment bring a Redis of their own.
   */
  onSharedRedisCluster(services) {
    if (settings.redisMode !== 'cluster') return false;
    const own = ['redisHost', 'redisPort', 'redisClusterNodes'].some((k) => services?.[k] !== undefined && services?.[k] !== null);
    const ownEnv = ['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES', 'REDIS_HOST', 'REDIS_PORT'].some((k) => k in this.extraEnv);
    return !own && !ownEnv;
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
    client.token = token; // for `barrier` (barrier.mjs)
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
