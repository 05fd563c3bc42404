/**
 * The Kubernetes `format` CEL library and optional values, through policies as a fleet repo
 * holds them. The messages are apimachinery's, word for word (the oracle test holds a sample
 * of them to the real API server).
 */
import type { KubeObject } from '@flotilla/shared';
import { evaluatePolicies, loadPolicies } from '@flotilla/shared/policy';
import { describe, expect, it } from 'vitest';

const object: KubeObject = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'web.v2', namespace: 'apps' },
  data: { uri: 'docs please', id: '123e4567-e89b-12d3-a456-426614174000' },
};

function policy(validation: string): string {
  return `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: p}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: ["*"], resources: [configmaps], operations: [CREATE]}]
  validations:
${validation}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b}
spec: {policyName: p, validationActions: [Deny]}
`;
}

/** The value of a CEL expression that yields a string, through a messageExpression. */
function message(expr: string): string | undefined {
  const { set, errors } = loadPolicies([
    {
      path: 'policies/p.yaml',
      content: policy(
        `    - expression: "false"\n      message: fallback\n      messageExpression: ${JSON.stringify(expr)}`,
      ),
    },
  ]);
  expect(errors).toEqual([]);
  return evaluatePolicies(set, [object])[0]?.message;
}

/** Whether a boolean CEL expression holds: true, false, or the error of the evaluation. */
function holds(expr: string): boolean | string {
  const { set, errors } = loadPolicies([
    { path: 'policies/p.yaml', content: policy(`    - expression: ${JSON.stringify(expr)}`) },
  ]);
  expect(errors).toEqual([]);
  const [v] = evaluatePolicies(set, [object]);
  return v === undefined ? true : v.message.startsWith('failed expression') ? false : v.message;
}

const errorsOf = (format: string, value: string) =>
  message(`format.${format}().validate(${JSON.stringify(value)}).value().join(' | ')`);

const LABEL_1123 =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_1035 =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const KEY_NAME =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

describe('format library', () => {
  it.each([
    ['dns1123Label', 'My_Name', LABEL_1123],
    ['dns1123Label', 'web.v2', 'must not contain dots'],
    ['dns1123Label', 'a'.repeat(64), 'must be no more than 63 characters'],
    ['dns1123Label', '-'.repeat(64), `must be no more than 63 characters | ${LABEL_1123}`],
    ['dns1123Subdomain', 'Example.com', SUBDOMAIN],
    ['dns1123Subdomain', `${'a.'.repeat(127)}a`, 'must be no more than 253 characters'],
    ['dns1035Label', '1abc', LABEL_1035],
    ['dns1123LabelPrefix', 'web.x-', 'must not contain dots'],
    ['dns1035LabelPrefix', '1a-', LABEL_1035],
    ['dns1123SubdomainPrefix', '-web-', SUBDOMAIN],
    ['qualifiedName', 'Example.com/-x', `prefix part ${SUBDOMAIN} | ${KEY_NAME}`],
    ['qualifiedName', '/x', 'prefix part must be non-empty'],
    ['qualifiedName', 'example.com/', `name part must be non-empty | ${KEY_NAME}`],
    ['qualifiedName', `${'a'.repeat(64)}`, 'name part must be no more than 63 bytes'],
    [
      'qualifiedName',
      'a/b/c',
      `a valid label key ${KEY_NAME.replace('name part ', '')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ],
    ['labelValue', '-x-', LABEL_VALUE],
    ['labelValue', `${'a'.repeat(64)}`, 'must be no more than 63 bytes'],
    ['uri', 'docs please', 'parse "docs please": invalid URI for request'],
    ['uri', '', 'parse "": empty url'],
    ['uri', ':x', 'parse ":x": missing protocol scheme'],
    ['uri', 'https://ex.com:x/', 'parse "https://ex.com:x/": invalid port ":x" after host'],
    ['uri', 'https://[::1/', `parse "https://[::1/": missing ']' in host`],
    ['uri', 'https://ex.com/a%zz', 'parse "https://ex.com/a%zz": invalid URL escape "%zz"'],
    [
      'uri',
      'https://ex.com/\t"\u007f',
      'parse "https://ex.com/\\t\\"\\x7f": net/url: invalid control character in URL',
    ],
    ['uuid', '123e4567-e89b-12d3-a456-42661417400', 'does not match the UUID format'],
    ['byte', 'aGVsbG8', 'invalid base64'],
    ['date', '2023-02-29', 'invalid date'],
    ['date', '2023-1-01', 'invalid date'],
    ['datetime', '2021-01-01T24:00:00Z', 'invalid datetime'],
    ['datetime', '2021-01-01 00:00:00Z', 'invalid datetime'],
  ])('%s refuses %j', (format, value, expected) => {
    expect(errorsOf(format, value)).toBe(expected);
  });

  it.each([
    ['dns1123Label', 'my-name'],
    ['dns1123Label', '123-abc'],
    ['dns1123Subdomain', 'apiextensions.k8s.io'],
    ['dns1035Label', 'my-label-name'],
    ['qualifiedName', 'apiextensions.k8s.io/v1beta1'],
    ['qualifiedName', 'MyName'],
    ['dns1123LabelPrefix', 'my-label-prefix-'],
    ['dns1123SubdomainPrefix', 'mysubdomain.prefix.-'],
    ['dns1035LabelPrefix', 'my-label-prefix-'],
    // Kubernetes masks a trailing dash by replacing the last two characters: '1-' is checked as 'a'.
    ['dns1035LabelPrefix', '1-'],
    ['labelValue', ''],
    ['labelValue', 'My_Value.1'],
    ['uri', 'http://example.com'],
    ['uri', '/just/a/path?x=1'],
    ['uri', 'mailto:someone@example.com'],
    ['uri', '*'],
    ['uuid', '123e4567-e89b-12d3-a456-426614174000'],
    ['uuid', '123E4567E89B12D3A456426614174000'],
    ['byte', 'aGVsbG8='],
    ['date', '2024-02-29'],
    ['datetime', '2021-01-01T00:00:00Z'],
    ['datetime', '2021-01-01t23:59:59.5+02:00'],
  ])('%s accepts %j', (format, value) => {
    expect(holds(`!format.${format}().validate(${JSON.stringify(value)}).hasValue()`)).toBe(true);
  });

  it('finds formats by name, none for an unknown name', () => {
    expect(
      holds("format.named('dns1123Subdomain').hasValue() && !format.named('dns1123subdomain').hasValue()"),
    ).toBe(true);
    expect(message("format.named('labelValue').value().validate('-').value()[0]")).toBe(LABEL_VALUE);
    expect(holds("format.named('uuid').value().validate(object.data.id) == optional.none()")).toBe(true);
    expect(message("format.named('uri').value().validate(object.data.uri).value().join('')")).toBe(
      'parse "docs please": invalid URI for request',
    );
  });
});

describe('optional values', () => {
  it.each([
    'optional.of(1).hasValue() && !optional.none().hasValue()',
    'optional.of(1).value() == 1',
    "optional.none().orValue('x') == 'x' && optional.of('y').orValue('x') == 'y'",
    'optional.none().or(optional.of(2)).value() == 2 && optional.of(1).or(optional.of(2)).value() == 1',
    'optional.of([1, 2]) == optional.of([1, 2]) && optional.of(1) != optional.of(2)',
    'optional.none() == optional.none() && optional.of(1) != optional.none()',
    "optional.of({'a': 1}) == optional.of({'a': 1}) && optional.of(optional.of(1)) != optional.of(optional.none())",
    "format.named('nope').orValue(format.dns1123Label()).validate('ok') == optional.none()",
  ])('%s', (expr) => {
    expect(holds(expr)).toBe(true);
  });

  it('refuses the value of none as an evaluation error', () => {
    expect(holds('optional.none().value() == 1')).toMatch(/resulted in error: optional.none\(\) dereference/);
  });
});

describe('what the engine does not support', () => {
  const errs = (expr: string) =>
    loadPolicies([
      { path: 'policies/p.yaml', content: policy(`    - expression: ${JSON.stringify(expr)}`) },
    ]).errors.map((e) => `${e.line}: ${e.message}`);

  it('refuses the optional syntax at load, naming it', () => {
    const refusal = (column: number) =>
      `8: spec.validations[0].expression: syntax error at column ${column}: the optional syntax (a.?b, [?x], {?k: v}) is not supported: test for a field with has()`;
    expect(errs('object.?data.orValue({}) == {}')).toEqual([refusal(7)]);
    expect(errs('[?optional.none()] == []')).toEqual([refusal(2)]);
    expect(errs("{'a': 1, ?'b': optional.none()} == {}")).toEqual([refusal(10)]);
  });

  it('names an unknown function of the format and optional libraries', () => {
    expect(errs("format.email().validate('a@b').hasValue()")).toEqual([
      "8: spec.validations[0].expression: undeclared reference to function 'format.email'",
    ]);
    expect(errs('optional.ofNonZeroValue(0).hasValue()')).toEqual([
      "8: spec.validations[0].expression: undeclared reference to function 'optional.ofNonZeroValue'",
    ]);
  });
});
