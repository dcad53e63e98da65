// Fault (suite): the node leading most partition queues of a 3-node RabbitMQ cluster of
// the test's own (scripts/rabbitmq-cluster.sh with its own node names, ports and
// directory, removed afterwards) is killed (kill -9) under 400 msg/s offered: 0 lost,
// 0 duplicated, 0 gaps; 503 only while no quorum answers; live delivery back within 5 s
// of the leader election; the node rejoins and every quorum queue heals. See
// fault-cluster-scenario.mjs; the long, repeated version is `scripts/bench.sh cluster-chaos`.

import { clusterKillScenario } from './fault-cluster-scenario.mjs';

clusterKillScenario({
  title: 'RabbitMQ cluster (own nodes): the leading node killed under 400 msg/s loses nothing, live again within 5 s of the election',
  own: true,
  rate: 400,
  secs: 12,
  lanesPerSender: 25,
  killAfter: 300,
  minAccepted: 400,
});
