// End-to-end harness for Courier.
//
// A `Deployment` is an isolated Courier installation made of the built binaries
// (split: api + worker + N gateways; or the all-in-one `courier`) on its own
// PostgreSQL database, RabbitMQ vhost and Redis key prefix, all named
// `courier_e2e_<random>`, so concurrent runs and a developer's own data never
// meet. Teardown stops the processes and removes all three.
//
// This file is the entry point tests import from; the parts live in:
//   settings.mjs    settings (environment overrides), PASSWORD
//   util.mjs        small utilities (sleep, within, waitFor, unique names)
//   jwt.mjs         JWT crafting
//   infra.mjs       infrastructure (run, psql, rabbitmqctl, redis-cli, free ports)
//   processes.mjs   child processes (spawn, captured output, readiness, stop)
//   client.mjs      Socket.IO client with an event recorder
//   rest.mjs        REST helpers of a deployment (`RestClient`)
//   deployment.mjs  Deployment (lifecycle, sockets) and `useDeployment` for node:test
//   flows.mjs       shared flows (delivery expectations, direct-chat round trip, history)

export { PASSWORD, settings } from './settings.mjs';
export { sleep, uniqueResourceName, uniqueUsername, waitFor, within } from './util.mjs';
export { accessClaims, craftJwt } from './jwt.mjs';
export { freePorts, infra, makeInfra, run, serviceEndpoints } from './infra.mjs';
export { CourierProcess } from './processes.mjs';
export { ChatClient, connect } from './client.mjs';
export { Deployment, useDeployment } from './deployment.mjs';
export { directRoundTrip, expectDelivery, expectHistory } from './flows.mjs';
export { barrier } from './barrier.mjs';
