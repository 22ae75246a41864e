/**
 * Typed errors of the ledger client. They are thrown only for a caller's own mistakes (signing a
 * message with a field out of range, hashing a reading without a salt): input from outside — an
 * envelope, a proof — is checked by functions that return a typed result instead of throwing.
 */

/** A value the caller passed does not fit its wire type (PROTOCOL.md §1). Permanent: never retry. */
export class LedgerInputError extends Error {
  readonly kind = 'invalid-input';
  readonly retryable = false;
  /** The field at fault, e.g. `message.valueW` or `reading.salt`. */
  readonly field: string;
  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.name = 'LedgerInputError';
    this.field = field;
  }
}
