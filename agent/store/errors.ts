/** Errors the store raises. Each names the database file it is about. */
export class StoreError extends Error {
  override readonly name: string = 'StoreError';
  constructor(
    message: string,
    /** The database file path. */
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The file is not a SQLite database, is damaged, or cannot be opened (permissions, missing dir). */
export class StoreOpenError extends StoreError {
  override readonly name = 'StoreOpenError';
}

/** The file was written by a newer flexgate (schema version above what this build knows). */
export class StoreVersionError extends StoreError {
  override readonly name = 'StoreVersionError';
  constructor(
    path: string,
    readonly fileVersion: number,
    readonly supportedVersion: number,
  ) {
    super(
      `store ${path} has schema version ${fileVersion}, but this flexgate knows versions up to ${supportedVersion}: ` +
        `it was written by a newer flexgate; upgrade flexgate or point it at another store file`,
      path,
    );
  }
}

/** A schema migration step failed; the step was rolled back and the file is left at `fromVersion`. */
export class StoreMigrationError extends StoreError {
  override readonly name = 'StoreMigrationError';
  constructor(
    path: string,
    readonly version: number,
    readonly migrationName: string,
    cause: unknown,
  ) {
    super(
      `store ${path}: migration ${version} (${migrationName}) failed and was rolled back: ${errorMessage(cause)}`,
      path,
      { cause },
    );
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
