// The pure helpers the engine will call while running tasks: conditions, transforms, outgoing variables, durations.
import { MissingVariableError, type TemplateVariables } from '../templating';
import { applyOperator, collectOutgoingVariables, ConditionError, evaluateConditionSet, evaluateTransform, parseDuration, TransformError, type ConditionOperator } from './index';

describe('applyOperator', () => {
  it.each<[unknown, ConditionOperator, unknown, boolean]>([
    [1, '==', 1, true],
    [{ a: [1, 2] }, '==', { a: [1, 2] }, true],
    [1, '==', '1', false],
    ['a', '!=', 'b', true],
    [2, '<', 3, true],
    [3, '<=', 3, true],
    ['2026-01-02', '>', '2026-01-01', true],
    [3, '>=', 4, false],
    ['hello world', 'contains', 'world', true],
    [['a', 'b'], 'contains', 'b', true],
    [[{ id: 1 }], 'contains', { id: 1 }, true],
    [{ k: 1 }, 'contains', 'k', true],
    ['abc', 'notContains', 'z', true],
    ['b', 'in', ['a', 'b'], true],
    ['x', 'notIn', ['a', 'b'], true],
    [0, 'exists', undefined, true],
    [null, 'exists', undefined, false],
    [undefined, 'notExists', undefined, true],
    ['', 'empty', undefined, true],
    [[], 'empty', undefined, true],
    [{}, 'notEmpty', undefined, false],
    ['PS100012', 'matches', '^PS[0-9]+$', true],
    ['VDI-0007', 'startsWith', 'VDI-', true],
    ['file.ps1', 'endsWith', '.ps1', true],
  ])('%j %s %j is %s', (left, op, right, expected) => {
    expect(applyOperator(op, left, right)).toBe(expected);
  });

  it.each<[unknown, ConditionOperator, unknown]>([
    [1, '<', '2'],
    [{}, '>', {}],
    [5, 'contains', 1],
    ['abc', 'contains', 1],
    [5, 'matches', '.'],
    ['a', 'matches', '('],
    [1, 'startsWith', '1'],
  ])('throws a ConditionError for %j %s %j', (left, op, right) => {
    expect(() => applyOperator(op, left, right)).toThrow(ConditionError);
  });

  it('refuses over-long patterns and subjects for matches', () => {
    expect(() => applyOperator('matches', 'a', 'x'.repeat(501))).toThrow(/pattern longer than 500/);
    expect(() => applyOperator('matches', 'x'.repeat(10_001), 'x')).toThrow(/value longer than 10000/);
  });
});

describe('evaluateConditionSet', () => {
  const vars: TemplateVariables = { order: { source: 'servicenow' }, output: { body: { value: [{ StatusType: 2 }] } } };

  it('renders operands and records each condition', () => {
    expect(evaluateConditionSet({ conditions: [{ left: '{{order.source}}', operator: '==', right: 'servicenow' }] }, vars)).toEqual({
      result: true,
      conditions: [{ left: 'servicenow', operator: '==', right: 'servicenow', result: true }],
    });
  });

  it('stops at the first false for all, at the first true for any', () => {
    const set = {
      conditions: [
        { left: '{{output.body.value.0.StatusType}}', operator: '==' as const, right: 1 },
        { left: '{{output.body.nothing}}', operator: '==' as const, right: 1 },
      ],
    };
    expect(evaluateConditionSet(set, vars)).toMatchObject({ result: false, conditions: [{ left: 2, result: false }] });
    expect(() => evaluateConditionSet({ ...set, match: 'any' }, vars)).toThrow(MissingVariableError);
  });

  it('lets exists look at a missing variable, so a later condition can rely on it', () => {
    const set = {
      conditions: [
        { left: '{{output.body.value.0.Missing}}', operator: 'exists' as const },
        { left: '{{output.body.value.0.Missing}}', operator: '==' as const, right: 1 },
      ],
    };
    expect(evaluateConditionSet(set, vars)).toEqual({ result: false, conditions: [{ left: null, operator: 'exists', result: false }] });
  });

  it('throws naming the variable when a non-exists operand is missing', () => {
    expect(() => evaluateConditionSet({ conditions: [{ left: '{{order.nope}}', operator: '==', right: 1 }] }, vars)).toThrow("template variable 'order.nope' is not set");
  });

  it('is true for an empty any-free all set only when every condition holds', () => {
    expect(evaluateConditionSet({ match: 'all', conditions: [{ left: 1, operator: '<', right: 2 }, { left: 'a', operator: 'in', right: 'abc' }] }, {}).result).toBe(true);
    expect(evaluateConditionSet({ match: 'any', conditions: [{ left: 1, operator: '>', right: 2 }] }, {}).result).toBe(false);
  });
});

describe('evaluateTransform', () => {
  it('builds a value from the incoming variables', async () => {
    await expect(evaluateTransform('{"number": crNumber, "query": "number=" & crNumber}', { crNumber: 'CHG0042' })).resolves.toEqual({
      result: { number: 'CHG0042', query: 'number=CHG0042' },
    });
    await expect(evaluateTransform('obj.value[0].vm', { obj: { value: [{ vm: 'vm-1' }, { vm: 'vm-2' }] } })).resolves.toEqual({ result: 'vm-1' });
    await expect(evaluateTransform('items[price > 5].name', { items: [{ name: 'a', price: 3 }, { name: 'b', price: 9 }, { name: 'c', price: 7 }] })).resolves.toEqual({ result: ['b', 'c'] });
  });

  it('turns no result into null', async () => {
    await expect(evaluateTransform('missing.path', {})).resolves.toEqual({ result: null });
  });

  it('cannot reach the process', async () => {
    await expect(evaluateTransform('$process', {})).resolves.toEqual({ result: null });
    await expect(evaluateTransform('$eval("1+1")', {})).resolves.toEqual({ result: 2 });
    await expect(evaluateTransform('$eval("$require")', {})).resolves.toEqual({ result: null });
  });

  it('fails with a TransformError on a parse error, a runtime error and the depth limit', async () => {
    await expect(evaluateTransform('{"a": ', {})).rejects.toThrow(TransformError);
    await expect(evaluateTransform('$number("x")', {})).rejects.toThrow(/JSONata failed/);
    await expect(evaluateTransform('($f := function($n) { 1 + $f($n + 1) }; $f(0))', {})).rejects.toThrow(/JSONata failed/);
  });
});

describe('collectOutgoingVariables', () => {
  it('reads each outgoing variable from the output and exports job variables', () => {
    const output = { ok: true, status: 200, body: { value: [{ vm: 'vm-7' }] }, result: 'r' };
    const task = { outgoing: { result: null, ok: '$var.job.lastOk', vmId: { from: 'body.value.0.vm', job: 'vm' }, absent: { from: 'body.none' } } };
    expect(collectOutgoingVariables(task, output)).toEqual({ variables: { result: 'r', ok: true, vmId: 'vm-7' }, job: { lastOk: true, vm: 'vm-7' } });
    expect(collectOutgoingVariables({}, output)).toEqual({ variables: {}, job: {} });
  });
});

describe('parseDuration', () => {
  it.each<[string | number, number]>([
    [1500, 1500],
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
  ])('%j is %d ms', (v, ms) => expect(parseDuration(v)).toBe(ms));

  it.each([['5 minutes'], [-1], [1.5], ['m']])('rejects %j', (v) => expect(() => parseDuration(v)).toThrow(RangeError));
});
