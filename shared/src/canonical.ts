import { hash } from 'node:crypto';

/** A content hash: `sha256:` followed by 64 lowercase hex digits. */
export type ContentHash = `sha256:${string}`;

/**
 * Serializes a JSON-compatible value canonically: object keys sorted by UTF-16 code
 * units, no whitespace, strings and numbers as `JSON.stringify` writes them (the same
 * rules as RFC 8785, JCS). Equal values always give byte-identical text.
 *
 * @throws {TypeError} for values JSON cannot represent (undefined, functions, NaN, Infinity, bigint).
 * @example
 * canonicalJson({ b: 1, a: [true, null] }); // '{"a":[true,null],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  const parts: string[] = [];
  write(value, parts, '$');
  return parts.join('');
}

function write(value: unknown, out: string[], path: string): void {
  if (value === null) {
    out.push('null');
    return;
  }
  switch (typeof value) {
    case 'string':
      out.push(JSON.stringify(value));
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${path}: ${value} cannot be represented in JSON`);
      out.push(JSON.stringify(value));
      return;
    case 'object': {
      if (Array.isArray(value)) {
        out.push('[');
        value.forEach((item, i) => {
          if (i > 0) out.push(',');
          write(item, out, `${path}[${i}]`);
        });
        out.push(']');
        return;
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record)
        .filter((k) => record[k] !== undefined)
        .sort();
      out.push('{');
      keys.forEach((k, i) => {
        if (i > 0) out.push(',');
        out.push(JSON.stringify(k), ':');
        write(record[k], out, `${path}.${k}`);
      });
      out.push('}');
      return;
    }
    default:
      throw new TypeError(`${path}: a ${typeof value} cannot be represented in JSON`);
  }
}

/** The `sha256:<hex>` hash of a string (as UTF-8) or of bytes. */
export function sha256Hash(data: string | Uint8Array): ContentHash {
  // One-shot crypto.hash is markedly faster than createHash() for the many small inputs the hub hashes.
  return `sha256:${hash('sha256', data, 'hex')}`;
}

/** Whether a string is a well-formed {@link ContentHash}. */
export function isContentHash(value: unknown): value is ContentHash {
  return typeof value === 'string' && /^sha256:[0-9a-f]{64}$/.test(value);
}
