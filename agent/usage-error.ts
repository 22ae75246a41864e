/** A mistake in how the command was called: printed to stderr, exit code 2 (PROTOCOL.md §8). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
