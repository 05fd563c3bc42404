/**
 * A reader for the plain YAML that kubeconfig files are written in (block mappings and
 * sequences, plain and quoted scalars, comments, empty `{}` and `[]`). Anything else
 * (anchors, tags, block scalars, flow collections with content, tabs) is refused with
 * {@link UnsupportedYamlError}, and the caller falls back to a full YAML parser. A full
 * parser costs the agent about 12 MB of memory for the one file it reads at start.
 */
export class UnsupportedYamlError extends Error {
  constructor(line: number, what: string) {
    super(`line ${line}: ${what} is beyond the simple YAML reader`);
    this.name = 'UnsupportedYamlError';
  }
}

interface Line {
  readonly n: number;
  readonly indent: number;
  readonly text: string;
}

function stripComment(raw: string): string {
  let quote = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (quote) {
      if (c === quote) quote = '';
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || raw[i - 1] === ' ')) return raw.slice(0, i);
  }
  return raw;
}

function lines(text: string): Line[] {
  const out: Line[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (/^\s*\t/.test(raw)) throw new UnsupportedYamlError(i + 1, 'a tab indent');
    const body = stripComment(raw).replace(/\s+$/, '');
    if (body.trim() === '' || body === '---') return;
    if (body === '...') return;
    out.push({ n: i + 1, indent: body.length - body.trimStart().length, text: body.trimStart() });
  });
  return out;
}

function scalar(text: string, n: number): unknown {
  if (text === '{}') return {};
  if (text === '[]') return [];
  if (text.startsWith('"')) {
    if (!text.endsWith('"') || text.length < 2) throw new UnsupportedYamlError(n, 'a multi-line string');
    try {
      return JSON.parse(text);
    } catch {
      throw new UnsupportedYamlError(n, 'a YAML escape');
    }
  }
  if (text.startsWith("'")) {
    if (!text.endsWith("'") || text.length < 2) throw new UnsupportedYamlError(n, 'a multi-line string');
    return text.slice(1, -1).replace(/''/g, "'");
  }
  if (/^[&*!|>{[%@`]/.test(text)) throw new UnsupportedYamlError(n, `"${text.slice(0, 12)}"`);
  if (text === 'true' || text === 'True' || text === 'TRUE') return true;
  if (text === 'false' || text === 'False' || text === 'FALSE') return false;
  if (text === 'null' || text === '~' || text === 'Null' || text === 'NULL') return null;
  if (/^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(text)) return Number(text);
  return text;
}

/** Splits `key: value` (or `key:`) into its parts; undefined when the line is no mapping entry. */
function entry(text: string): [string, string] | undefined {
  let key: string;
  let rest: string;
  if (text.startsWith('"') || text.startsWith("'")) {
    const end = text.indexOf(text[0] as string, 1);
    if (end < 0 || text[end + 1] !== ':') return undefined;
    key = scalar(text.slice(0, end + 1), 0) as string;
    rest = text.slice(end + 2);
  } else {
    const m = /^([^:]*?):(?: |$)/.exec(text);
    if (!m) return undefined;
    key = (m[1] as string).trim();
    rest = text.slice(m[0].length);
  }
  if (rest !== '' && !rest.startsWith(' ') && rest.trim() !== '' && text.startsWith('"')) return undefined;
  return [key, rest.trim()];
}

const isItem = (l: Line) => l.text === '-' || l.text.startsWith('- ');

/**
 * Parses the simple YAML of a kubeconfig.
 *
 * @throws {UnsupportedYamlError} for anything beyond plain mappings, sequences and scalars.
 */
export function parseSimpleYaml(text: string): unknown {
  const ls = lines(text);
  let pos = 0;

  const block = (indent: number): unknown => {
    const first = ls[pos];
    if (!first || first.indent < indent) return null;
    return isItem(first) ? sequence(first.indent) : mapping(first.indent);
  };

  const value = (rest: string, parentIndent: number, n: number): unknown => {
    if (rest !== '') return scalar(rest, n);
    const next = ls[pos];
    if (!next) return null;
    if (next.indent > parentIndent) return block(next.indent);
    // kubectl writes sequences at the indent of their key.
    if (next.indent === parentIndent && isItem(next)) return sequence(parentIndent);
    return null;
  };

  const mapping = (indent: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    while (pos < ls.length) {
      const l = ls[pos] as Line;
      if (l.indent < indent || (l.indent === indent && isItem(l))) break;
      if (l.indent > indent) throw new UnsupportedYamlError(l.n, 'an unexpected indent');
      const kv = entry(l.text);
      if (!kv) throw new UnsupportedYamlError(l.n, `"${l.text.slice(0, 20)}"`);
      pos++;
      out[kv[0]] = value(kv[1], indent, l.n);
    }
    return out;
  };

  const sequence = (indent: number): unknown[] => {
    const out: unknown[] = [];
    while (pos < ls.length) {
      const l = ls[pos] as Line;
      if (l.indent !== indent || !isItem(l)) break;
      const rest = l.text === '-' ? '' : l.text.slice(2).trimStart();
      if (rest === '') {
        pos++;
        out.push(value('', indent, l.n));
      } else if (entry(rest) && !rest.startsWith('"') && !rest.startsWith("'")) {
        // `- key: value` starts a mapping whose keys line up with `key`.
        const inner = l.indent + (l.text.length - rest.length);
        ls[pos] = { n: l.n, indent: inner, text: rest };
        out.push(mapping(inner));
      } else {
        pos++;
        out.push(scalar(rest, l.n));
      }
    }
    return out;
  };

  const result = block(0);
  if (pos < ls.length) throw new UnsupportedYamlError((ls[pos] as Line).n, 'text after the document');
  return result;
}
