import { Writable } from 'node:stream';
import winston from 'winston';

/** A winston logger that keeps every line in memory, at the most verbose level, for assertions. */
export interface MemoryLogger {
  logger: winston.Logger;
  lines: Record<string, unknown>[];
  /** Every line as JSON text, for "this secret never appears" checks. */
  text(): string;
}

export function createMemoryLogger(): MemoryLogger {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, next) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      next();
    },
  });
  const logger = winston.createLogger({
    level: 'silly',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: sink })],
  });
  return { logger, lines, text: () => lines.map((l) => JSON.stringify(l)).join('\n') };
}
