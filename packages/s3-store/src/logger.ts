/** The one method the store logs with; a pino logger (or any with the same call shape) fits. */
export interface Logger {
  error(fields: Record<string, unknown>, message: string): void;
}

/** Without a logger: one JSON line per error on stderr, as pino would write it. */
export const stderrLogger: Logger = {
  error(fields, message) {
    const err =
      fields.err instanceof Error ? { message: fields.err.message, stack: fields.err.stack } : fields.err;
    process.stderr.write(
      `${JSON.stringify({ level: 50, time: Date.now(), ...fields, err, msg: message })}\n`,
    );
  },
};
