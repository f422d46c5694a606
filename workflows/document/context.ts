import type { ChildWorkflowInfo, CompileContext, OperationInfo } from './compile';
import type { JsonSchema } from './templatable';

export interface StaticCompileContextDefinition {
  /** integration name -> operationIds, or operationId -> what is known of it. */
  integrations?: Record<string, string[] | Record<string, OperationInfo>>;
  /** workflow name -> its versions (the last is the latest), with an optional input schema each. */
  workflows?: Record<string, { version: number; inputSchema?: JsonSchema }[]>;
  /** script module name -> versions. */
  scriptModules?: Record<string, number[]>;
}

/**
 * A CompileContext over plain data: for tests, previews and the sample definitions. A category left out skips its
 * check, as a missing callback does.
 */
export function staticCompileContext(def: StaticCompileContextDefinition): CompileContext {
  const ctx: CompileContext = {};
  const { integrations, workflows, scriptModules } = def;
  if (integrations) {
    ctx.lookupIntegration = (name) => {
      if (!Object.prototype.hasOwnProperty.call(integrations, name)) return undefined;
      const ops = integrations[name] as string[] | Record<string, OperationInfo>;
      return {
        operation: (id) =>
          Array.isArray(ops) ? (ops.includes(id) ? {} : undefined) : Object.prototype.hasOwnProperty.call(ops, id) ? ops[id] : undefined,
      };
    };
  }
  if (workflows) {
    ctx.lookupWorkflow = (name, version): ChildWorkflowInfo | undefined => {
      const versions = Object.prototype.hasOwnProperty.call(workflows, name) ? workflows[name] : undefined;
      if (!versions || versions.length === 0) return undefined;
      return version === undefined ? versions[versions.length - 1] : versions.find((v) => v.version === version);
    };
  }
  if (scriptModules) {
    ctx.lookupScriptModule = (module, version) => Object.prototype.hasOwnProperty.call(scriptModules, module) && (scriptModules[module] ?? []).includes(version);
  }
  return ctx;
}
