import { WORKFLOW_END, WORKFLOW_START, type GraphWorkflowDocument, type StepsWorkflowDocument, type Transitions, type WorkflowTask } from './types';

/** Vertical spacing of the automatic canvas layout of a steps document, in canvas units. */
const STEP_SPACING = 120;

/**
 * The graph a steps document stands for: `workflow_start` -> step 1 -> ... -> step n -> `workflow_end`, each on
 * `success`. A step marked `critical: false` keeps the flag, which makes its error follow the same transition (an
 * Itential transition map holds one state per target, so "continue on error" cannot be a second transition).
 * Steps without a canvas position are laid out in a column. Ids are assumed unique (the compiler checks).
 */
export function stepsToGraph(doc: StepsWorkflowDocument): GraphWorkflowDocument {
  const tasks: Record<string, WorkflowTask> = {};
  const transitions: Transitions = {};
  let previous: string = WORKFLOW_START;
  doc.steps.forEach((step, i) => {
    const { id, ...task } = step;
    tasks[id] = { ...task, nodeLocation: task.nodeLocation ?? { x: 0, y: STEP_SPACING * (i + 1) } } as WorkflowTask;
    transitions[previous] = { [id]: { type: 'standard', state: 'success' } };
    previous = id;
  });
  transitions[previous] = { [WORKFLOW_END]: { type: 'standard', state: 'success' } };
  const { steps: _steps, canvas, ...rest } = doc;
  return {
    ...rest,
    tasks,
    transitions,
    canvas: {
      workflow_start: canvas?.workflow_start ?? { x: 0, y: 0 },
      workflow_end: canvas?.workflow_end ?? { x: 0, y: STEP_SPACING * (doc.steps.length + 1) },
    },
  };
}
