// The workflows room: documents (format, schema, compiler, import/export), templating, and the durable engine.
export * from './document';
export * from './templating';
export * from './engine';
