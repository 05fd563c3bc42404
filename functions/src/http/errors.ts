/**
 * Errors of the HTTP edge: each maps to one status code in the error handler. The
 * domain's own errors (ValidationError, NotFoundError, ConflictError) come from the core.
 */

/** No credentials, or credentials the hub does not accept. 401. */
export class UnauthenticatedError extends Error {
  /** The `WWW-Authenticate` challenge to send back. */
  readonly challenge: string;
  constructor(message: string, options?: ErrorOptions & { challenge?: string }) {
    super(message, options);
    this.name = 'UnauthenticatedError';
    this.challenge = options?.challenge ?? 'Bearer realm="flotilla"';
  }
}

/** Valid credentials for something else: another cluster's route. 403. */
export class ForbiddenError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ForbiddenError';
  }
}

/** No route has this path. 404. */
export class RouteNotFoundError extends Error {
  constructor(method: string, path: string) {
    super(`no route for ${method} ${path}`);
    this.name = 'RouteNotFoundError';
  }
}

/** A route has this path, but not for this method. 405, with the methods it has. */
export class MethodNotAllowedError extends Error {
  readonly allowed: readonly string[];
  constructor(method: string, path: string, allowed: readonly string[]) {
    super(`${method} is not allowed on ${path} (allowed: ${allowed.join(', ')})`);
    this.name = 'MethodNotAllowedError';
    this.allowed = allowed;
  }
}

/** The body is not the JSON it claims to be. 400. */
export class MalformedBodyError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MalformedBodyError';
  }
}

/** A body in a media type the route does not take. 415. */
export class UnsupportedMediaTypeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedMediaTypeError';
  }
}

/** A body larger than the route takes. 413. */
export class PayloadTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PayloadTooLargeError';
  }
}
