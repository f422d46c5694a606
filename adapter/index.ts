export * from './db';
export { createJobQueue, QueueName } from './queue';
export type { JobQueue, JobQueueOptions } from './queue';
export { createLogger, withLogContext, currentLogContext, redact } from './log';
export type { Logger, LogContext } from './log';
export { projectRoot, projectPath } from './paths';
export * from './http';
export * from './directory';
