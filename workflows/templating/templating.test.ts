import {
  MissingVariableError,
  TemplateSyntaxError,
  listTemplateReferences,
  paramsFromConfig,
  renderTemplate,
  renderValue,
  scanTemplates,
  type TemplateVariables,
} from './index';

const vars: TemplateVariables = {
  order: { id: 42, username: 'pparker', user_email: 'peter.parker@example.com', owner_email: null },
  asset: { id: 7, name: 'VDI-0007', attributes: { vm_id: 'vm-1007' } },
  params: paramsFromConfig({ region: 'eu-west', cores: 4 }),
  inputs: { group: 'VDI-Users', count: 3 },
  job: { ticket: 'CHG0001' },
  steps: {
    find_vm: { output: { ok: true, status: 200, body: [{ vm: 'vm-1007', name: 'VDI-0007' }] }, variables: { vmId: 'vm-1007', vm: { power: 'ON' } } },
  },
};

describe('renderTemplate', () => {
  it('renders the seed variables embedded in text', () => {
    expect(renderTemplate('{{order.username}} <{{ order.user_email }}> on {{asset.name}} in {{params.attr_region}}', vars)).toBe(
      'pparker <peter.parker@example.com> on VDI-0007 in eu-west',
    );
  });

  it('returns the raw value for a whole-string template', () => {
    expect(renderTemplate('{{params.attr_cores}}', vars)).toBe(4);
    expect(renderTemplate('{{steps.find_vm.output.body}}', vars)).toEqual([{ vm: 'vm-1007', name: 'VDI-0007' }]);
    expect(renderTemplate('{{steps.find_vm.output.body[0].vm}}', vars)).toBe('vm-1007');
    expect(renderTemplate('{{steps.find_vm.output.body.0.name}}', vars)).toBe('VDI-0007');
    expect(renderTemplate('{{order.owner_email}}', vars)).toBeNull();
  });

  it('stringifies embedded numbers, booleans and objects', () => {
    expect(renderTemplate('n={{inputs.count}} ok={{steps.find_vm.output.ok}} b={{steps.find_vm.output.body}}', vars)).toBe(
      'n=3 ok=true b=[{"vm":"vm-1007","name":"VDI-0007"}]',
    );
  });

  it('resolves $var references to task variables and job variables, falling back to inputs', () => {
    expect(renderTemplate('$var.find_vm.vmId', vars)).toBe('vm-1007');
    expect(renderTemplate('$var.find_vm.vm.power', vars)).toBe('ON');
    expect(renderTemplate('$var.job.ticket', vars)).toBe('CHG0001');
    expect(renderTemplate('$var.job.group', vars)).toBe('VDI-Users');
  });

  it('leaves plain strings alone', () => {
    expect(renderTemplate('no templates here } {', vars)).toBe('no templates here } {');
  });

  it.each([
    ['{{order.usrname}}', 'order.usrname', 'order.usrname'],
    ['hello {{asset.attributes.missing}}', 'asset.attributes.missing', 'asset.attributes.missing'],
    ['{{params.attr_size}}', 'params.attr_size', 'params.attr_size'],
    ['{{steps.nope.output}}', 'steps.nope.output', 'steps.nope'],
    ['{{inputs.count.deeper}}', 'inputs.count.deeper', 'inputs.count.deeper'],
    ['$var.find_vm.nothing', '$var.find_vm.nothing', '$var.find_vm.nothing'],
    ['$var.ghost.vmId', '$var.ghost.vmId', '$var.ghost'],
    ['$var.job.absent', '$var.job.absent', '$var.job.absent'],
  ])('throws a MissingVariableError naming %s', (template, variable, missingAt) => {
    let error: unknown;
    try {
      renderTemplate(template, vars);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MissingVariableError);
    expect(error).toMatchObject({ code: 'TEMPLATE_MISSING_VARIABLE', variable, missingAt, reason: 'undefined' });
    expect((error as Error).message).toContain(variable);
  });

  it('throws when a root is absent altogether (no order in a scheduled run)', () => {
    expect(() => renderTemplate('{{order.username}}', { inputs: {} })).toThrow("template variable 'order.username' is not set");
  });

  it('refuses to embed null in text rather than printing nothing', () => {
    expect(() => renderTemplate('mail {{order.owner_email}}', vars)).toThrow(MissingVariableError);
    expect(() => renderTemplate('mail {{order.owner_email}}', vars)).toThrow(/is null/);
  });

  it('never reaches inherited properties', () => {
    expect(() => renderTemplate('{{order.constructor}}', vars)).toThrow(MissingVariableError);
    expect(() => renderTemplate('{{order.__proto__}}', vars)).toThrow(MissingVariableError);
  });

  it('returns undefined for a missing whole-string reference when allowMissing is set', () => {
    expect(renderTemplate('{{asset.attributes.absent}}', vars, { allowMissing: true })).toBeUndefined();
    expect(() => renderTemplate('x {{asset.attributes.absent}}', vars, { allowMissing: true })).toThrow(MissingVariableError);
  });

  it.each([['{{order.username'], ['{{}}'], ['{{order..username}}'], ['{{order.user name}}'], ['$var.onlytask'], ['$var.']])(
    'rejects malformed template %s',
    (template) => {
      expect(() => renderTemplate(template, vars)).toThrow(TemplateSyntaxError);
    },
  );
});

describe('renderValue', () => {
  it('renders nested objects and arrays without touching the input', () => {
    const input = { user: '{{order.username}}', groups: ['{{inputs.group}}', 'static'], n: 1, deep: { vm: '$var.find_vm.vmId' } };
    const copy = JSON.parse(JSON.stringify(input));
    expect(renderValue(input, vars)).toEqual({ user: 'pparker', groups: ['VDI-Users', 'static'], n: 1, deep: { vm: 'vm-1007' } });
    expect(input).toEqual(copy);
  });
});

describe('listTemplateReferences', () => {
  it('lists every reference with its pointer', () => {
    const refs = listTemplateReferences({ a: 'x {{order.username}} {{ asset.name }}', b: ['$var.t1.out.x'], 'c/d': '{{steps.s.output.body}}' });
    expect(refs).toEqual([
      { kind: 'template', expression: 'order.username', root: 'order', path: ['username'], pointer: '/a', whole: false },
      { kind: 'template', expression: 'asset.name', root: 'asset', path: ['name'], pointer: '/a', whole: false },
      { kind: 'var', expression: '$var.t1.out.x', task: 't1', name: 'out', path: ['x'], pointer: '/b/0', whole: true },
      { kind: 'template', expression: 'steps.s.output.body', root: 'steps', path: ['s', 'output', 'body'], pointer: '/c~1d', whole: true },
    ]);
  });

  it('throws at the first malformed template, with its pointer', () => {
    expect(() => listTemplateReferences({ ok: '{{a}}', bad: ['{{a'] })).toThrow(expect.objectContaining({ pointer: '/bad/0' }));
  });

  it('scanTemplates collects every problem', () => {
    const scan = scanTemplates(['{{a', '{{}}', '{{ok.x}}']);
    expect(scan.problems.map((p) => p.pointer)).toEqual(['/0', '/1']);
    expect(scan.references).toHaveLength(1);
  });
});

describe('paramsFromConfig', () => {
  it('prefixes each config key with attr_', () => {
    expect(paramsFromConfig({ region: 'eu', size: 2 })).toEqual({ attr_region: 'eu', attr_size: 2 });
    expect(paramsFromConfig(null)).toEqual({});
  });
});
