// Endurance runs, the stack and the world: PostgreSQL, Redis and RabbitMQ instances of
// the run's own (so restarting them disturbs nothing else), a split deployment on them,
// and the users, chats, devices and sending lanes of the traffic.
//
// World of `users` (even, >= 4) users: users/2 groups of four (user j is in two) and
// users/2 direct chats (user j with j + users/2); two members of every chat send, so
// there are 2 x users lanes; every user has a device, users 0 and 1 a second one on
// the other gateway, and user 3 talks long-polling.

import { EnduranceClient } from './endurance-client.mjs';
import { Lanes } from './endurance-traffic.mjs';
import { createUsers } from './fault-scenario.mjs';
import { Deployment, accessClaims, craftJwt } from './harness.mjs';
import { startPostgres, startRabbitMQ, startRedis } from './instances.mjs';

/** Starts the three services and a split deployment on them; `stop()` removes everything. */
export async function startStack({ gateways = 2, workers = 1, env = {} } = {}) {
  const started = await Promise.allSettled([startRedis(), startPostgres(), startRabbitMQ()]);
  const [redis, pg, rabbit] = started.map((s) => (s.status === 'fulfilled' ? s.value : null));
  const stopInstances = () => Promise.all([redis, pg, rabbit].filter(Boolean).map((i) => i.stop()));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await stopInstances();
    throw failed.reason;
  }
  const d = new Deployment({
    mode: 'split', gateways, workers, env,
    services: { ...redis.services, ...pg.services, ...rabbit.services },
  });
  try {
    await d.start();
  } catch (err) {
    await stopInstances();
    throw err;
  }
  return {
    d, redis, pg, rabbit,
    async stop() {
      try {
        await d.stop();
      } finally {
        await stopInstances();
      }
    },
  };
}

/** Creates the world's users, chats, clients (connected) and lanes (not yet running). */
export async function buildWorld(d, { users = 16, t0, tokenTtlSecs, interact = false }) {
  if (users < 4 || users % 2) throw new Error(`users must be even and at least 4, not ${users}`);
  const names = Array.from({ length: users }, (_, j) => `u${j}`);
  const acc = await createUsers(d, names);
  // Tokens that outlive the run (the gateway disconnects a socket when its token expires).
  for (const n of names) acc[n].accessToken = craftJwt(accessClaims(acc[n].user.id, tokenTtlSecs), d.jwtSecret);
  const id = (j) => acc[names[j % users]].user.id;
  const token = (j) => acc[names[j % users]].accessToken;

  const chats = [];
  for (let g = 0; g < users / 2; g++) {
    const members = [2 * g, 2 * g + 1, 2 * g + 2, 2 * g + 3].map((j) => j % users);
    const chat = await d.createGroup(token(members[0]), `endurance g${g}`, members.slice(1).map(id));
    chats.push({ id: chat.id, title: `g${g}`, memberIdx: members, senders: [members[0], members[2]] });
  }
  for (let j = 0; j < users / 2; j++) {
    const chat = await d.createDirect(token(j), id(j + users / 2));
    chats.push({ id: chat.id, title: `dm${j}`, memberIdx: [j, j + users / 2], senders: [j, j + users / 2] });
  }
  for (const c of chats) c.members = c.memberIdx.map(id);

  const gatewayUrls = d.gatewayUrls;
  const devices = [...names.map((_, j) => ({ j, gateway: j % gatewayUrls.length })),
    { j: 0, gateway: 1 % gatewayUrls.length }, { j: 1, gateway: 0 }];
  const seen = new Map();
  const clients = devices.map(({ j, gateway }) => {
    seen.set(j, (seen.get(j) ?? 0) + 1);
    return new EnduranceClient({
      label: `u${j}#${seen.get(j)}@gw${gateway + 1}`, account: acc[names[j]], gateway, gatewayUrls, t0, interact,
      chatIds: chats.filter((c) => c.memberIdx.includes(j)).map((c) => c.id),
      transports: j === 3 ? ['polling'] : ['websocket'],
    });
  });
  await Promise.all(clients.map((c) => c.start()));

  const lanes = new Lanes(d.apiUrl, chats.flatMap((chat) => chat.senders.map((j) => ({ chat, account: acc[names[j]] }))), t0);
  return { chats, clients, lanes };
}
