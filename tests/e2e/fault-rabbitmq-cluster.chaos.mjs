// Fault, long version (`scripts/bench.sh cluster-chaos`): a node of the shared 3-node
// RabbitMQ cluster of scripts/rabbitmq-cluster.sh (started here if it is not running) is
// killed (kill -9) under 400 msg/s; see fault-cluster-scenario.mjs for what is promised.
// The suite's short version is fault-rabbitmq-cluster.test.mjs.
//
// Knobs: COURIER_CLUSTER_RATE (msg/s, default 400), COURIER_CLUSTER_SECS (stream length,
// default 20), COURIER_CLUSTER_LANES (lanes per sender, default 25).

import { clusterKillScenario } from './fault-cluster-scenario.mjs';

const envInt = (name, fallback) => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const RATE = envInt('COURIER_CLUSTER_RATE', 400);

clusterKillScenario({
  title: 'RabbitMQ cluster: the leading node killed at 400 msg/s loses nothing, live again within 5 s of the election',
  own: false,
  rate: RATE,
  secs: envInt('COURIER_CLUSTER_SECS', 20),
  lanesPerSender: envInt('COURIER_CLUSTER_LANES', 25),
  killAfter: RATE * 3,
  minAccepted: RATE * 5,
});
