/**
 * Kubernetes resource quantities (`500m`, `1.5Gi`, `2e3`) as exact rationals, for the CEL
 * `quantity` library. The API server parses them with k8s.io/apimachinery's
 * resource.Quantity; this reads the same grammar and compares exactly, so `1Gi` and
 * `1073741824` are equal and `100m` is less than `0.2`.
 */

/** An exact value: `num / den`, with `den` positive and the fraction reduced. */
export interface Rational {
  readonly num: bigint;
  readonly den: bigint;
}

const BINARY: Record<string, bigint> = { Ki: 10n, Mi: 20n, Gi: 30n, Ti: 40n, Pi: 50n, Ei: 60n };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

// sign, digits with at most one dot, then a suffix: binary (Ki..Ei), decimal (n..E) or an exponent (e/E and an integer).
const QUANTITY = /^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$/;

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
}

export function rational(num: bigint, den: bigint): Rational {
  if (den === 0n) throw new Error('division by zero');
  const sign = den < 0n ? -1n : 1n;
  const g = gcd(num, den) || 1n;
  return { num: (sign * num) / g, den: (sign * den) / g };
}

/** Parses a quantity, or returns undefined when the text is not one. */
export function parseQuantity(text: string): Rational | undefined {
  const m = QUANTITY.exec(text);
  if (!m) return undefined;
  const [, sign = '', digits = '', suffix = ''] = m;
  const [whole = '', frac = ''] = digits.split('.');
  let num = BigInt(`${whole}${frac}` || '0');
  let den = 10n ** BigInt(frac.length);
  if (sign === '-') num = -num;
  if (suffix in BINARY) num *= 2n ** (BINARY[suffix] as bigint);
  else {
    const exp = suffix in DECIMAL ? (DECIMAL[suffix] as number) : Number(suffix.slice(1));
    // An exponent this large is no resource amount; the API server refuses it as well.
    if (!Number.isSafeInteger(exp) || Math.abs(exp) > 1000) return undefined;
    if (exp >= 0) num *= 10n ** BigInt(exp);
    else den *= 10n ** BigInt(-exp);
  }
  return rational(num, den);
}

export function compareRational(a: Rational, b: Rational): number {
  const l = a.num * b.den;
  const r = b.num * a.den;
  return l < r ? -1 : l > r ? 1 : 0;
}

export function addRational(a: Rational, b: Rational): Rational {
  return rational(a.num * b.den + b.num * a.den, a.den * b.den);
}

export function negate(a: Rational): Rational {
  return { num: -a.num, den: a.den };
}

/** The canonical text of a value (`num/den`), used as the identity of a CEL quantity. */
export function rationalKey(a: Rational): string {
  return `${a.num}/${a.den}`;
}

export function rationalFromKey(key: string): Rational {
  const [n = '0', d = '1'] = key.split('/');
  return { num: BigInt(n), den: BigInt(d) };
}
