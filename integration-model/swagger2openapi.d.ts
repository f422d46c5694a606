// swagger2openapi ships no types; this declares the one entry point we use.
declare module 'swagger2openapi' {
  export interface ConvertOptions {
    patch?: boolean;
    warnOnly?: boolean;
    direct?: boolean;
    targetVersion?: string;
    resolve?: boolean;
  }
  export function convertObj(swagger: object, options: ConvertOptions): Promise<unknown>;
}
