/**
 * The `flotilla` command's exit codes. Scripts may rely on them; docs/cli.md lists them.
 */
export const ExitCode = {
  /** Done. */
  Ok: 0,
  /** Something unexpected failed (a bug, or an error with no better code). */
  Failure: 1,
  /** Wrong command line: unknown command or flag, missing or malformed argument, or a request the hub rejected as invalid (400). */
  Usage: 2,
  /** Configuration missing or invalid: no hub URL, no admin credentials, unreadable config file or kubeconfig. */
  Config: 3,
  /** No such cluster, bundle, token or context (404). */
  NotFound: 4,
  /** The name is taken by another cluster, or the Kubernetes cluster already belongs to another name (409). */
  Conflict: 5,
  /** Credentials refused: admin key, cluster token, or an expired, used or unknown registration token (401, 403). */
  Unauthorized: 6,
  /** The hub could not be reached or failed (network error, 5xx). */
  Unavailable: 7,
  /** Waited longer than allowed (the agent's first heartbeat). */
  Timeout: 8,
  /** The Kubernetes API refused or could not be reached. */
  Kubernetes: 9,
  /** The fleet repo has errors: the output is printed, and the problems by file and line on stderr. */
  FleetErrors: 10,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
