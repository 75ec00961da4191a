/**
 * An error caused by what the user gave us (a path, a shape, a flag). The CLI
 * prints its message as one line and exits 2; the service maps it to a 4xx.
 */
export class UserError extends Error {
  constructor(message: string, readonly statusCode = 400) {
    super(message);
    this.name = 'UserError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
