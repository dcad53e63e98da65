// Removes what crashed or killed e2e runs left behind: every PostgreSQL
// database, RabbitMQ vhost and Redis key named courier_e2e_*, and the throwaway
// service instances of the fault tests (courier-fault-* temp directories and the
// processes in their pid files, and the network-namespaced RabbitMQ clusters).
//
// Only for when no e2e run is in progress on this machine: it would pull the
// resources from under it. Normal runs clean up after themselves.

import { infra } from './harness.mjs';
import { sweepNetnsClusters } from './fault-partition.mjs';
import { sweepInstances } from './instances.mjs';

const databases = await infra.listDatabases();
for (const db of databases) await infra.dropDatabase(db);

const vhosts = await infra.listVhosts();
for (const vhost of vhosts) await infra.deleteVhost(vhost);

const keys = await infra.deleteRedisKeys('courier_e2e_');

const instances = await sweepInstances() + await sweepNetnsClusters();

console.log(`removed ${databases.length} database(s), ${vhosts.length} vhost(s), ${keys} Redis key(s), `
  + `${instances} throwaway service instance(s)`);
