// Throwaway PostgreSQL, Redis and RabbitMQ instances for fault-injection tests.
//
// A test that stops or restarts a service must not pull it from under the tests
// running beside it, so it gets an instance of its own: on free ports of
// 127.0.0.1, with its data in a fresh temporary directory, started and removed
// by the test itself. Each instance can be taken down and brought back up on
// the same port (`down()`, `up()`, `restart({downMs})`), and `stop()` removes it
// for good. Removal is robust: `stop()` is idempotent, falls back to SIGKILL, and
// a synchronous last-resort handler kills whatever is left when the Node process
// exits (an uncaught error, Ctrl-C through the harness's signal handlers).
//
// Needs the Debian packages redis-server, postgresql (15) and rabbitmq-server
// (scripts/services.sh installs them). PostgreSQL and RabbitMQ refuse to run as
// root, so when we are root their processes run as the `postgres` / `rabbitmq`
// users (`su`), which own the instance's directory.
//
//   const redis = await startRedis();            // {port, services, down(), up(), restart(), stop()}
//   const pg = await startPostgres();            // services.pgAdminUrl on its port
//   const rabbit = await startRabbitMQ();        // a second Erlang node; services.rabbitPort/-n node
//   new Deployment({ services: redis.services }) // see harness.mjs

import { readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { readPid } from './instance.mjs';
import { killClusterDir } from './instances-redis-cluster.mjs';

export { startRedis } from './instances-redis.mjs';
export { startPostgres } from './instances-postgres.mjs';
export { startRabbitMQ } from './instances-rabbitmq.mjs';
export { startPgBouncer } from './instances-pgbouncer.mjs';

/**
 * Removes what killed runs left behind: every `courier-fault-*` directory in the temp
 * directory, after SIGKILLing the processes recorded in its pid files. Only for when no
 * e2e run is in progress (see sweep.mjs). Resolves the number of directories removed.
 */
export async function sweepInstances() {
  const tmp = os.tmpdir();
  const dirs = readdirSync(tmp).filter((d) => /^courier-fault-(redis|pg|rabbit|pgbouncer|rcluster)-/.test(d)).map((d) => path.join(tmp, d));
  for (const dir of dirs) {
    if (/courier-fault-rcluster-/.test(dir)) { killClusterDir(dir); continue; } // a node per subdir
    const pids = ['redis.pid', 'data/postmaster.pid', 'rabbit.pid', 'pgbouncer.pid'].map((f) => readPid(path.join(dir, f))).filter(Boolean);
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return dirs.length;
}
