/**
 * The browser's memory of the phone, in IndexedDB (one database per peer
 * id): the call history (with missed calls) and the contacts.
 */

/** One call in the history, as the desktop app keeps it. */
export interface HistoryRecord {
  id?: number;
  peer: string;
  direction: 'outgoing' | 'incoming';
  /** answered, missed, declined, busy, canceled, failed, answered elsewhere */
  outcome: string;
  /** The ending said plainly. */
  sentence: string;
  /** When it started (ms since the epoch). */
  at: number;
  /** Talk time in seconds (answered calls). */
  seconds: number;
  /** Unseen missed call. */
  unseen?: boolean;
}

const VERSION = 1;

function promised<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

export class Store {
  private constructor(private readonly db: IDBDatabase | null) {}

  /** Opens the database of `peerId`; a browser without IndexedDB (private mode) keeps nothing. */
  static async open(peerId: string): Promise<Store> {
    if (typeof indexedDB === 'undefined') return new Store(null);
    try {
      const request = indexedDB.open(`softphone:${peerId}`, VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains('history')) db.createObjectStore('history', { keyPath: 'id', autoIncrement: true });
        if (!db.objectStoreNames.contains('contacts')) db.createObjectStore('contacts', { keyPath: 'peer' });
      };
      return new Store(await promised(request));
    } catch {
      return new Store(null);
    }
  }

  async addRecord(record: HistoryRecord): Promise<void> {
    if (!this.db) return;
    await promised(this.db.transaction('history', 'readwrite').objectStore('history').add(record));
  }

  /** The newest `limit` records, newest first. */
  async history(limit = 50): Promise<HistoryRecord[]> {
    if (!this.db) return [];
    const all = (await promised(this.db.transaction('history').objectStore('history').getAll())) as HistoryRecord[];
    return all.reverse().slice(0, limit);
  }

  /** Marks every missed call seen. */
  async markSeen(): Promise<void> {
    if (!this.db) return;
    const store = this.db.transaction('history', 'readwrite').objectStore('history');
    const all = (await promised(store.getAll())) as HistoryRecord[];
    for (const r of all) if (r.unseen) await promised(store.put({ ...r, unseen: false }));
  }

  async contacts(): Promise<string[]> {
    if (!this.db) return [];
    const all = (await promised(this.db.transaction('contacts').objectStore('contacts').getAll())) as { peer: string }[];
    return all.map((c) => c.peer).sort();
  }

  async addContact(peer: string): Promise<void> {
    if (!this.db) return;
    await promised(this.db.transaction('contacts', 'readwrite').objectStore('contacts').put({ peer }));
  }

  async removeContact(peer: string): Promise<void> {
    if (!this.db) return;
    await promised(this.db.transaction('contacts', 'readwrite').objectStore('contacts').delete(peer));
  }
}
