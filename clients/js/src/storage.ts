// Outbox storage: where unsent messages live across a reload. MemoryStorage (default; also a
// stand-in for tests of a "reload": hand the same instance to a new client) and
// IndexedDbStorage (browsers; one record in an object store of its own database).

/** What the outbox keeps of an entry. */
export interface StoredEntry {
  clientMessageId: string;
  chatId: string;
  content: string;
  replyToId?: string | null;
  attachments?: string[];
  state: 'sending' | 'failed';
  createdAt: string;
  /** The chat's last sequence when the send was made: the saved message comes after it. */
  afterSequence?: number;
  error?: { status: number; code: string; message: string } | null;
}

export interface OutboxStorage {
  load(): Promise<StoredEntry[]>;
  save(entries: StoredEntry[]): Promise<void>;
}

export class MemoryStorage implements OutboxStorage {
  #entries: StoredEntry[] = [];
  async load(): Promise<StoredEntry[]> { return structuredClone(this.#entries); }
  async save(entries: StoredEntry[]): Promise<void> { this.#entries = structuredClone(entries); }
}

/** IndexedDB in the browser: database `name`, object store `outbox`, key `entries`. */
export class IndexedDbStorage implements OutboxStorage {
  #db: Promise<IDBDatabase> | null = null;

  constructor(private readonly name = 'courier', private readonly factory: IDBFactory | undefined = globalThis.indexedDB) {}

  #open(): Promise<IDBDatabase> {
    if (!this.#db) {
      this.#db = new Promise((resolve, reject) => {
        if (!this.factory) { reject(new Error('IndexedDB is not available here')); return; }
        const req = this.factory.open(this.name, 1);
        req.onupgradeneeded = () => { req.result.createObjectStore('outbox'); };
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    }
    return this.#db;
  }

  async load(): Promise<StoredEntry[]> {
    const db = await this.#open();
    return new Promise((resolve, reject) => {
      const req = db.transaction('outbox', 'readonly').objectStore('outbox').get('entries');
      req.onsuccess = () => resolve((req.result as StoredEntry[] | undefined) ?? []);
      req.onerror = () => reject(req.error);
    });
  }

  async save(entries: StoredEntry[]): Promise<void> {
    const db = await this.#open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction('outbox', 'readwrite');
      tx.objectStore('outbox').put(entries, 'entries');
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
  }
}
