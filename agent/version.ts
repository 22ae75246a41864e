import pkg from '../package.json' with { type: 'json' };

/** The agent's version (package.json), reported in bridge/info and `flexgate --version`. */
export const VERSION: string = pkg.version;
