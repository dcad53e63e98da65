// Infrastructure helpers: running commands, where the services are (`serviceEndpoints`),
// psql / rabbitmqctl / redis-cli helpers for databases, vhosts and Redis keys
// (`makeInfra`, `infra`; on one Redis or on a Redis Cluster, whose keys are scanned and
// deleted on every master), and free TCP ports.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import net from 'node:net';

import { settings } from './settings.mjs';

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
    /** Options put before every redis-cli command, e.g. ['--tls', '--cacert', ca, '--user', u, '--pass', p]. */
    redisCliArgs: [],
    /**
     * A Redis Cluster instead of redisHost/redisPort: its seed list "host:port,..." (given
     * to Courier as REDIS_CLUSTER_NODES; redis-cli then follows redirects, and key scans and
     * deletes go to every master).
     */
    redisClusterNodes: null,
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
      if (ep.redisClusterNodes) return clusterCli(ep, ['-c', ...args]);
      return run('redis-cli', ['-h', ep.redisHost, '-p', String(ep.redisPort), ...ep.redisCliArgs, ...args]);
    },

    /** Every key starting with `prefix` (SCAN, never KEYS; on every master of a cluster). */
    async redisKeys(prefix) {
      return (await keysByNode(prefix)).flatMap((n) => n.keys);
    },

    /** Deletes every key starting with `prefix`; returns how many were deleted. */
    async deleteRedisKeys(prefix) {
      assert.match(prefix, /^courier_e2e_/, `refusing to delete Redis keys under ${prefix}`);
      let deleted = 0;
      for (let round = 0; round < 3; round++) {
        const nodes = await keysByNode(prefix);
        const count = nodes.reduce((n, x) => n + x.keys.length, 0);
        if (count === 0) return deleted;
        for (const { node, keys } of nodes) {
          if (node) {
            // A cluster refuses a DEL of keys in several slots: one DEL a key, piped.
            await redisPipe(node, ep, keys.map((k) => ['DEL', k]));
            continue;
          }
          for (let i = 0; i < keys.length; i += 500) {
            await infra.redisCli(['DEL', ...keys.slice(i, i + 500)]);
          }
        }
        deleted += count;
      }
      const left = await infra.redisKeys(prefix);
      assert.equal(left.length, 0, `Redis keys under ${prefix} keep reappearing: ${left.slice(0, 5)}`);
      return deleted;
    },
  };
  /** [{node: 'host:port' (a cluster's master) or null, keys}] of the keys starting with `prefix`. */
  async function keysByNode(prefix) {
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    const lines = (out) => out.split('\n').filter(Boolean);
    if (!ep.redisClusterNodes) {
      const { stdout } = await infra.redisCli(['--scan', '--pattern', pattern]);
      return [{ node: null, keys: lines(stdout) }];
    }
    const masters = await clusterMasters(ep);
    return Promise.all(masters.map(async (node) => {
      const [host, port] = node.split(':');
      const { stdout } = await run('redis-cli', ['-h', host, '-p', port, ...ep.redisCliArgs, '--scan', '--pattern', pattern]);
      return { node, keys: lines(stdout) };
    }));
  }

  return infra;
}

/** The seed list of a cluster as [host, port] pairs. */
const clusterSeeds = (ep) => ep.redisClusterNodes.split(',').map((s) => s.trim()).filter(Boolean)
  .map((s) => [s.slice(0, s.lastIndexOf(':')), s.slice(s.lastIndexOf(':') + 1)]);

/** redis-cli on the first node of the cluster's seed list that can be reached. */
async function clusterCli(ep, args) {
  let last = null;
  for (const [host, port] of clusterSeeds(ep)) {
    try {
      return await run('redis-cli', ['-h', host, '-p', port, ...ep.redisCliArgs, ...args]);
    } catch (err) {
      last = err;
      if (!/Could not connect|Connection refused/i.test(err.message)) throw err;
    }
  }
  throw last ?? new Error('redisClusterNodes is empty');
}

/**
 * The cluster's live masters that serve slots ("host:port"), from CLUSTER NODES of a
 * reachable node (lines: id addr@bus flags master-id ping pong epoch link slot...).
 */
export async function clusterMasters(ep) {
  const { stdout } = await clusterCli(ep, ['CLUSTER', 'NODES']);
  return stdout.split('\n').map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 8 && /master/.test(f[2]) && !/fail/.test(f[2]))
    .map((f) => f[1].split('@')[0]);
}

/** Runs `commands` (arrays of arguments) through one redis-cli on `node` ("host:port"), fed on stdin. */
function redisPipe(node, ep, commands) {
  const [host, port] = [node.slice(0, node.lastIndexOf(':')), node.slice(node.lastIndexOf(':') + 1)];
  // redis-cli's own quoting: every argument in double quotes, \ and " escaped.
  const quote = (a) => `"${String(a).replace(/[\\"]/g, '\\$&')}"`;
  const input = commands.map((c) => c.map(quote).join(' ')).join('\n');
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', ['-h', host, '-p', port, ...ep.redisCliArgs], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { out += c; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 && !/^\(error\)|^ERR|MOVED|CROSSSLOT/m.test(out) ? resolve(out)
      : reject(new Error(`redis-cli on ${node} (piped ${commands.length} commands): exit ${code}\n${out.slice(0, 500)}`))));
    child.stdin.end(`${input}\n`);
  });
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
