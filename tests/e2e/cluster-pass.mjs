// The Redis Cluster pass (`npm run test:cluster`, run by scripts/test.sh after the main
// e2e run): the realtime files below run again, unchanged, with COURIER_E2E_REDIS=cluster,
// so every deployment they start runs on the shared Redis Cluster of
// scripts/redis-cluster.sh (REDIS_CLUSTER_NODES, a key prefix of its own). The cluster is
// started here if it is not running, and stopped at the end if this run started it.
// Extra arguments are passed to `node --test` (e.g. `npm run test:cluster -- --test-only`);
// COURIER_E2E_CLUSTER_FILES (space-separated) replaces the list, e.g. to run one file.

import { spawn } from 'node:child_process';

import { run } from './infra.mjs';
import { CLUSTER_SCRIPT } from './instances-redis-cluster.mjs';

/**
 * The cluster subset: what cluster mode changes is where keys live (hash tags per user,
 * chat and gateway), the worker's fan-out split per slot, group events written to each
 * member's own stream (no chat timelines), each user's own clock (the offsets), presence
 * and routing in per-slot steps, and the gateways' subscriptions on any node. These files
 * exercise exactly that, by behaviour only (none reads Redis keys), in ~2 min of release
 * binaries (about 4 min of debug binaries on a 2-core CI runner):
 */
export const CLUSTER_FILES = [
  'direct.test.mjs', // direct chats over WebSocket and long-polling: the per-user push path
  'groups.test.mjs', // a 300-member group over two gateways: fan-out split per slot, members'
  //                    streams, recovery on the other gateway, typing, add/remove live
  'fanout.test.mjs', // two gateways: each socket gets each event exactly once (push channels)
  'recovery.test.mjs', // auth.offset recovery across gateways: the per-user streams and their
  //                      retention (RECOVERY_MAX_EVENTS / RECOVERY_WINDOW_SECS)
  'receipts.test.mjs', // delivered / read statuses and marks (per-chat keys)
  'typing.test.mjs', // typing across gateways, its expiry and the per-socket rate limit
  'fault-gateway-kill-offset.test.mjs', // kill -9 of a gateway under load: sockets hand over
  //                                       to the other gateway and resume by offset alone
];
// Left out: presence.test.mjs reads a user's socket hash (`user:<id>:sockets`) by its
// single-node key name, which cluster mode tags (`user:{u:<id>}:sockets`); likewise
// fault-gateway-kill / -sigterm (gatewayRoutingState) and redis-sentinel-loss. Files that
// bring a Redis of their own (fault-redis-*, tls-*) ignore the switch anyway.

const here = import.meta.dirname;
const files = (process.env.COURIER_E2E_CLUSTER_FILES ?? '').trim().split(/\s+/).filter(Boolean);
const chosen = files.length ? files : CLUSTER_FILES;

const running = await run(CLUSTER_SCRIPT, ['status'], { timeoutMs: 30_000 }).then(() => true, () => false);
const startedAt = Date.now();
await run(CLUSTER_SCRIPT, ['start'], { timeoutMs: 120_000 });
const seeds = (await run(CLUSTER_SCRIPT, ['nodes'])).stdout.trim();
process.stdout.write(`[cluster-pass] Redis Cluster ${seeds} ${running ? '(already running)' : `started in ${Date.now() - startedAt} ms`}; files: ${chosen.join(' ')}\n`);

const code = await new Promise((resolve) => {
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...process.argv.slice(2), ...chosen], {
    cwd: here, stdio: 'inherit', env: { ...process.env, COURIER_E2E_REDIS: 'cluster' },
  });
  child.on('close', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
});

if (!running) await run(CLUSTER_SCRIPT, ['stop'], { timeoutMs: 60_000 }).catch((err) => process.stderr.write(`[cluster-pass] stop: ${err.message}\n`));
process.stdout.write(`[cluster-pass] ${chosen.length} file(s) on the Redis Cluster in ${Math.round((Date.now() - startedAt) / 1000)} s: ${code === 0 ? 'ok' : `failed (exit ${code})`}\n`);
process.exitCode = code;
