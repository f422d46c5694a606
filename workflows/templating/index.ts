// Templating: `{{order.username}}`-style placeholders and Itential `$var.<task>.<name>` references rendered against
// a run's variables, and listed statically so a document can be checked before it runs. Pure: no I/O.
export { MissingVariableError, TemplateError, TemplateSyntaxError } from './errors';
export type { TemplateErrorCode } from './errors';
export { TEMPLATE_ROOTS, isTemplated, listTemplateReferences, parsePath, parseTemplateString, scanTemplates } from './references';
export type { TaskVariableReference, TemplatePathReference, TemplateReference, TemplateRoot, TemplateScan } from './references';
export { renderTemplate, renderValue, resolveReference } from './render';
export type { RenderOptions } from './render';
export { paramsFromConfig } from './variables';
export type { StepVariables, TemplateVariables } from './variables';
