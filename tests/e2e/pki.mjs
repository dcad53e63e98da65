// A throwaway PKI per run, made with the openssl CLI (OpenSSL 3.0 or later): a CA, a
// server certificate for IP:127.0.0.1 only (so `localhost` is the wrong name), client
// certificates by common name, an expired server certificate and a second, unrelated
// CA (the "wrong CA"). Files are world-readable, so the brokers' service users (which
// run the instances) can read them; the directory is removed by `remove()`.
//
//   const pki = await makePki({ clients: ['courier-client'] });
//   pki.ca, pki.otherCa, pki.server.{cert,key}, pki.expired.{cert,key},
//   pki.clients['courier-client'].{cert,key}; await pki.remove();

import { chmodSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { run } from './harness.mjs';

const openssl = (dir, args) => run('openssl', args, { cwd: dir, timeoutMs: 30_000 });
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

async function selfSigned(dir, name, cn) {
  await openssl(dir, ['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.pem`,
    '-days', '2', '-subj', `/CN=${cn}`]);
}

/** A key and CSR, signed by the CA with `ext` lines (x509 -req). */
async function issue(dir, name, cn, ext) {
  await openssl(dir, ['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  writeFileSync(path.join(dir, `${name}.ext`), `${ext.join('\n')}\n`);
  await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
}

/** A server certificate valid only in January 2020 (`openssl ca` takes explicit dates). */
async function expired(dir) {
  await openssl(dir, ['req', ...EC, '-keyout', 'expired.key', '-out', 'expired.csr', '-subj', '/CN=courier-test-expired']);
  writeFileSync(path.join(dir, 'index.txt'), '');
  writeFileSync(path.join(dir, 'ca.cnf'), [
    '[ca]', 'default_ca = test', '[test]', `dir = ${dir}`, 'database = $dir/index.txt',
    'new_certs_dir = $dir', 'serial = $dir/expired.srl', 'default_md = sha256',
    'policy = any', 'email_in_dn = no', 'unique_subject = no',
    '[any]', 'commonName = supplied',
    '[ext]', 'subjectAltName = IP:127.0.0.1', 'extendedKeyUsage = serverAuth', '',
  ].join('\n'));
  writeFileSync(path.join(dir, 'expired.srl'), '1000\n');
  await openssl(dir, ['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key',
    '-in', 'expired.csr', '-out', 'expired.pem', '-startdate', '20200101000000Z',
    '-enddate', '20200201000000Z', '-extensions', 'ext', '-notext']);
}

export async function makePki({ clients = [] } = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'courier-pki-'));
  try {
    await selfSigned(dir, 'ca', 'courier-test-ca');
    await selfSigned(dir, 'other-ca', 'courier-other-ca');
    await issue(dir, 'server', 'courier-test-server',
      ['subjectAltName=IP:127.0.0.1', 'extendedKeyUsage=serverAuth']);
    for (const cn of clients) await issue(dir, `client-${cn}`, cn, ['extendedKeyUsage=clientAuth']);
    await expired(dir);
    chmodSync(dir, 0o755);
    for (const f of readdirSync(dir)) chmodSync(path.join(dir, f), 0o644);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const pair = (name) => ({ cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) });
  return {
    dir,
    ca: path.join(dir, 'ca.pem'),
    otherCa: path.join(dir, 'other-ca.pem'),
    server: pair('server'),
    expired: pair('expired'),
    clients: Object.fromEntries(clients.map((cn) => [cn, pair(`client-${cn}`)])),
    async remove() { rmSync(dir, { recursive: true, force: true }); },
  };
}
