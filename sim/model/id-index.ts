/**
 * Finds a record of one of the state's arrays by its ID without scanning the array. The state stays plain
 * arrays (persisted as JSON as they are); the index follows them: records are only ever appended, and an
 * array is replaced as a whole when records go (a cancelled import), so a new array or a shorter one is
 * indexed again and a longer one has its new tail added. Lookups by scanning cost a 10,000-task simulator
 * milliseconds per EC2 call (bench/README "scale").
 */
export class IdIndex<T> {
  private array: readonly T[] | undefined;
  private indexed = 0;
  private readonly byId = new Map<string, T>();

  constructor(private readonly idOf: (record: T) => string | undefined) {}

  get(array: readonly T[], id: string): T | undefined {
    if (array !== this.array || array.length < this.indexed) {
      this.array = array;
      this.byId.clear();
      this.indexed = 0;
    }
    for (; this.indexed < array.length; this.indexed++) {
      const record = array[this.indexed]!;
      const key = this.idOf(record);
      // The first record with an ID wins, as the scan it replaces (`find`) answered.
      if (key !== undefined && !this.byId.has(key)) this.byId.set(key, record);
    }
    const found = this.byId.get(id);
    // A record whose ID was changed in place would be found under its old one: never answer with it.
    return found !== undefined && this.idOf(found) === id ? found : undefined;
  }
}
