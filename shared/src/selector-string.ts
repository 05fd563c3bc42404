import { LabelSelectorSyntaxError } from './errors.ts';
import { labelKeyProblem, labelValueProblem } from './labels.ts';
import type { LabelSelector, LabelSelectorRequirement } from './selector.ts';

type Token =
  | { readonly type: 'ident'; readonly text: string; readonly pos: number }
  | { readonly type: 'op'; readonly text: string; readonly pos: number }
  | { readonly type: 'end'; readonly text: ''; readonly pos: number };

const SPECIAL = new Set(['!', '=', ',', '(', ')', '<', '>']);

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (SPECIAL.has(c)) {
      const two = text.slice(i, i + 2);
      if (two === '!=' || two === '==') {
        tokens.push({ type: 'op', text: two, pos: i });
        i += 2;
      } else {
        tokens.push({ type: 'op', text: c, pos: i });
        i++;
      }
      continue;
    }
    const start = i;
    while (i < text.length && !SPECIAL.has(text[i] as string) && !/\s/.test(text[i] as string)) i++;
    tokens.push({ type: 'ident', text: text.slice(start, i), pos: start });
  }
  tokens.push({ type: 'end', text: '', pos: text.length });
  return tokens;
}

/**
 * Parses a string selector in kubectl `-l` syntax into a {@link LabelSelector}:
 * `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key`
 * (exists) and `!key` (does not exist), separated by commas and ANDed.
 *
 * @throws {LabelSelectorSyntaxError} when the text is not a valid selector.
 * @example
 * parseLabelSelector('env=prod,region in (eu,us),!legacy');
 * // { matchLabels: { env: 'prod' }, matchExpressions: [
 * //   { key: 'region', operator: 'In', values: ['eu', 'us'] },
 * //   { key: 'legacy', operator: 'DoesNotExist' } ] }
 */
export function parseLabelSelector(text: string): LabelSelector {
  const tokens = tokenize(text);
  let at = 0;
  const peek = (): Token => tokens[at] as Token;
  const next = (): Token => tokens[at++] as Token;
  const fail = (message: string, pos: number): never => {
    throw new LabelSelectorSyntaxError(`invalid selector "${text}": ${message} (at column ${pos + 1})`, pos);
  };
  const checkKey = (tok: Token): string => {
    if (tok.type !== 'ident') fail(`expected a label key, found ${describe(tok)}`, tok.pos);
    const problem = labelKeyProblem(tok.text);
    if (problem) fail(problem, tok.pos);
    return tok.text;
  };
  const checkValue = (value: string, pos: number): string => {
    const problem = labelValueProblem(value);
    if (problem) fail(problem, pos);
    return value;
  };

  const matchLabels: Record<string, string> = {};
  const expressions: LabelSelectorRequirement[] = [];
  if (peek().type === 'end') return {};
  for (;;) {
    const first = next();
    if (first.type === 'op' && first.text === '!') {
      expressions.push({ key: checkKey(next()), operator: 'DoesNotExist' });
    } else {
      const key = checkKey(first);
      const op = peek();
      if (op.type === 'end' || (op.type === 'op' && op.text === ',')) {
        expressions.push({ key, operator: 'Exists' });
      } else if (op.type === 'op' && (op.text === '=' || op.text === '==' || op.text === '!=')) {
        next();
        const valueTok = peek();
        let value = '';
        if (valueTok.type === 'ident') {
          next();
          value = valueTok.text;
        } else if (!(valueTok.type === 'end' || (valueTok.type === 'op' && valueTok.text === ','))) {
          fail(`expected a value after "${op.text}", found ${describe(valueTok)}`, valueTok.pos);
        }
        checkValue(value, valueTok.pos);
        if (op.text === '!=') expressions.push({ key, operator: 'NotIn', values: [value] });
        else if (Object.hasOwn(matchLabels, key) && matchLabels[key] !== value) {
          expressions.push({ key, operator: 'In', values: [value] });
        } else matchLabels[key] = value;
      } else if (op.type === 'ident' && (op.text === 'in' || op.text === 'notin')) {
        next();
        const open = next();
        if (open.type !== 'op' || open.text !== '(') fail(`expected "(" after "${op.text}"`, open.pos);
        const values: string[] = [];
        if (peek().type === 'op' && peek().text === ')') {
          // As Kubernetes reads it: "()" is the set of one empty value.
          next();
          values.push('');
        } else {
          for (;;) {
            const v = peek();
            if (v.type === 'ident') {
              next();
              values.push(checkValue(v.text, v.pos));
            } else if (v.type === 'op' && (v.text === ',' || v.text === ')')) {
              values.push(''); // an empty value, as in "(a,,b)"
            } else fail(`expected a value or ")", found ${describe(v)}`, v.pos);
            const sep = next();
            if (sep.type === 'op' && sep.text === ')') break;
            if (!(sep.type === 'op' && sep.text === ','))
              fail(`expected "," or ")", found ${describe(sep)}`, sep.pos);
          }
        }
        const unique = [...new Set(values)].sort();
        expressions.push({ key, operator: op.text === 'in' ? 'In' : 'NotIn', values: unique });
      } else if (op.type === 'op' && (op.text === '<' || op.text === '>')) {
        fail(`operator "${op.text}" is not supported (use =, ==, !=, in, notin, key or !key)`, op.pos);
      } else {
        fail(`expected an operator (=, ==, !=, in, notin) or ",", found ${describe(op)}`, op.pos);
      }
    }
    const sep = next();
    if (sep.type === 'end') break;
    if (!(sep.type === 'op' && sep.text === ','))
      fail(`expected "," or end of selector, found ${describe(sep)}`, sep.pos);
    if (peek().type === 'end') fail('expected a requirement after ","', peek().pos);
  }
  const out: { matchLabels?: Record<string, string>; matchExpressions?: LabelSelectorRequirement[] } = {};
  if (Object.keys(matchLabels).length > 0) out.matchLabels = matchLabels;
  if (expressions.length > 0) out.matchExpressions = expressions;
  return out;
}

function describe(tok: Token): string {
  return tok.type === 'end' ? 'end of selector' : `"${tok.text}"`;
}

/**
 * Formats a selector in kubectl `-l` syntax; the inverse of {@link parseLabelSelector}.
 * The empty selector formats as the empty string (which matches everything).
 */
export function formatLabelSelector(selector: LabelSelector): string {
  const parts: string[] = [];
  const ml = selector.matchLabels ?? {};
  for (const key of Object.keys(ml).sort()) parts.push(`${key}=${ml[key]}`);
  for (const req of selector.matchExpressions ?? []) {
    const values = req.values ?? [];
    switch (req.operator) {
      case 'In':
        parts.push(values.length === 1 ? `${req.key}=${values[0]}` : `${req.key} in (${values.join(',')})`);
        break;
      case 'NotIn':
        parts.push(
          values.length === 1 ? `${req.key}!=${values[0]}` : `${req.key} notin (${values.join(',')})`,
        );
        break;
      case 'Exists':
        parts.push(req.key);
        break;
      case 'DoesNotExist':
        parts.push(`!${req.key}`);
        break;
    }
  }
  return parts.join(',');
}
