/**
 * EC2 Query parameters: `Action=…&Version=…&Foo.1=…&Filter.1.Name=…&Filter.1.Value.1=…`, from a
 * form-encoded POST body or a GET query string. Lists are 1-based and may have gaps; order is by index.
 */
import { Ec2Error } from '../model/errors';

export class QueryParams {
  constructor(private readonly values: Map<string, string>) {}

  static parse(text: string): QueryParams {
    return new QueryParams(new Map(new URLSearchParams(text)));
  }

  get(name: string): string | undefined {
    return this.values.get(name);
  }

  require(name: string): string {
    const value = this.values.get(name);
    if (value === undefined || value === '')
      throw new Ec2Error('MissingParameter', `The request must contain the parameter ${name}`);
    return value;
  }

  bool(name: string): boolean | undefined {
    const value = this.values.get(name);
    if (value === undefined) return undefined;
    if (value !== 'true' && value !== 'false')
      throw new Ec2Error(
        'InvalidParameterValue',
        `Value (${value}) for parameter ${name} is invalid. Expected true or false.`
      );
    return value === 'true';
  }

  int(name: string): number | undefined {
    const value = this.values.get(name);
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value))
      throw new Ec2Error(
        'InvalidParameterValue',
        `Value (${value}) for parameter ${name} is invalid. Expected a whole number.`
      );
    return Number(value);
  }

  /** Values of `prefix.1`, `prefix.2`, … in index order. */
  list(prefix: string): string[] {
    return this.indexes(prefix)
      .map((i) => this.values.get(`${prefix}.${i}`)!)
      .filter((v) => v !== undefined);
  }

  /** The distinct N of keys `prefix.N` or `prefix.N.…`, sorted. */
  indexes(prefix: string): number[] {
    const found = new Set<number>();
    for (const key of this.values.keys()) {
      if (!key.startsWith(`${prefix}.`)) continue;
      const n = Number(key.slice(prefix.length + 1).split('.')[0]);
      if (Number.isInteger(n) && n >= 1) found.add(n);
    }
    return [...found].sort((a, b) => a - b);
  }

  /** `Filter.N.Name` / `Filter.N.Value.M` → name → values. */
  filters(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const n of this.indexes('Filter')) {
      const name = this.values.get(`Filter.${n}.Name`);
      if (name) out.set(name, [...(out.get(name) ?? []), ...this.list(`Filter.${n}.Value`)]);
    }
    return out;
  }

  keys(): string[] {
    return [...this.values.keys()];
  }
}
