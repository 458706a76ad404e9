/**
 * What the store logs with; a pino logger (or any with the same call shape) fits. With `info`, one
 * access line per request (S3's server access log fields).
 */
export interface Logger {
  error(fields: Record<string, unknown>, message: string): void;
  info?(fields: Record<string, unknown>, message: string): void;
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

/** The standalone command's: errors and one access line per request, as JSON lines on stderr. */
export const stderrAccessLogger: Logger = {
  ...stderrLogger,
  info(fields, message) {
    process.stderr.write(`${JSON.stringify({ level: 30, time: Date.now(), ...fields, msg: message })}\n`);
  },
};
