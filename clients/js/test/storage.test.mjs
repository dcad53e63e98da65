// Outbox storages: MemoryStorage keeps copies; IndexedDbStorage against a minimal in-memory
// IndexedDB (open with upgrade, one object store, get/put in transactions), as a browser runs it.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { IndexedDbStorage, MemoryStorage } from '../dist/index.js';

/** The slice of IDBFactory the SDK uses, asynchronous like the real one. */
function fakeIndexedDb() {
  const dbs = new Map();
  const later = (fn) => setTimeout(fn, 0);
  return {
    opened: 0,
    open(name, version) {
      this.opened += 1;
      const req = {};
      later(() => {
        let db = dbs.get(name);
        const fresh = !db;
        if (fresh) { db = { version, stores: new Map() }; dbs.set(name, db); }
        const handle = {
          createObjectStore(s) { db.stores.set(s, new Map()); },
          transaction(storeName, mode) {
            const tx = {};
            tx.objectStore = (s) => {
              assert.equal(s, storeName);
              const data = db.stores.get(s);
              assert.ok(data, `object store ${s} exists`);
              return {
                get(key) { const r = {}; later(() => { r.result = structuredClone(data.get(key)); r.onsuccess?.(); }); return r; },
                put(value, key) {
                  assert.equal(mode, 'readwrite');
                  data.set(key, structuredClone(value));
                  later(() => tx.oncomplete?.());
                },
              };
            };
            return tx;
          },
        };
        req.result = handle;
        if (fresh) req.onupgradeneeded?.();
        req.onsuccess?.();
      });
      return req;
    },
  };
}

const entry = (id) => ({ clientMessageId: id, chatId: 'c', content: 'x', state: 'sending', createdAt: 't', afterSequence: 3 });

test('IndexedDbStorage: empty at first, then what was saved, across instances (a reload)', async () => {
  const idb = fakeIndexedDb();
  const a = new IndexedDbStorage('courier-test', idb);
  assert.deepEqual(await a.load(), []);
  await a.save([entry('1'), entry('2')]);
  await a.save([entry('2')]);
  const b = new IndexedDbStorage('courier-test', idb);
  assert.deepEqual(await b.load(), [entry('2')]);
  assert.equal(idb.opened, 2, 'one open per instance');
});

test('IndexedDbStorage without IndexedDB rejects with a clear error', async () => {
  await assert.rejects(new IndexedDbStorage('x', undefined).load(), /IndexedDB is not available/);
});

test('MemoryStorage hands out copies', async () => {
  const m = new MemoryStorage();
  const list = [entry('1')];
  await m.save(list);
  list[0].content = 'changed';
  const loaded = await m.load();
  assert.equal(loaded[0].content, 'x');
  loaded[0].content = 'again';
  assert.equal((await m.load())[0].content, 'x');
});
