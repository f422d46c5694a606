import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { sendJson, startLoopbackServer, type LoopbackServer } from './loopback-server';

/**
 * A loopback XenAPI JSON-RPC server that keeps pool state the way XAPI does for the calls of
 * openapi/integrations/xenserver.yaml: templates, VMs with a power state, snapshots, disks (VBD -> VDI), sessions,
 * and tasks for the `Async.*` calls that finish after `taskDelayMs`. Like XAPI it serves JSON-RPC under `/jsonrpc`
 * whatever follows that prefix (XAPI routes by longest path prefix and reads the method from the body), answers
 * every JSON-RPC call with HTTP 200, failures as `{"error": {"code": 1, "message": <XenAPI code>, "data": [...]}}`,
 * and uses XenAPI's own error codes and parameter lists.
 */

export interface XenVm {
  ref: string;
  uuid: string;
  name_label: string;
  power_state: 'Halted' | 'Running' | 'Paused' | 'Suspended';
  is_a_template: boolean;
  is_a_snapshot: boolean;
  snapshot_of: string;
  snapshots: string[];
  VBDs: string[];
  /** Set by VM.provision: the template's disks were created. */
  provisioned: boolean;
}

interface XenTask {
  ref: string;
  uuid: string;
  name_label: string;
  status: 'pending' | 'success' | 'failure';
  progress: number;
  result: string;
  error_info: string[];
}

export interface XenApiServer extends LoopbackServer {
  username: string;
  password: string;
  /** Every VM, template and snapshot by reference. */
  vms: Map<string, XenVm>;
  /** Disks that exist. */
  vdis: Set<string>;
  /** Live sessions. */
  sessions: Set<string>;
  tasks: Map<string, XenTask>;
  /** The reference of the template named `name`. */
  templateRef(name: string): string;
  /** JSON-RPC methods called, in order. */
  calls: string[];
}

const NULL_REF = 'OpaqueRef:NULL';
const ref = (): string => `OpaqueRef:${randomUUID()}`;

class XenFailure extends Error {
  constructor(
    readonly code: string,
    readonly params: string[],
  ) {
    super(code);
  }
}
const fail = (code: string, ...params: string[]): never => {
  throw new XenFailure(code, params);
};

export interface XenApiServerOptions {
  username?: string;
  password?: string;
  /** How long an Async task stays pending. Default 150 ms. */
  taskDelayMs?: number;
  /** Templates to create, each with one disk. Default: one named "Windows 11 VDI template". */
  templates?: string[];
}

export async function startXenApiServer(opts: XenApiServerOptions = {}): Promise<XenApiServer> {
  const username = opts.username ?? 'root';
  const password = opts.password ?? 'xen-secret-pw';
  const delay = opts.taskDelayMs ?? 150;
  const vms = new Map<string, XenVm>();
  const vbds = new Map<string, string>(); // VBD -> VDI
  const vdis = new Set<string>();
  const sessions = new Set<string>();
  const tasks = new Map<string, XenTask>();
  const calls: string[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const addDisk = (): string => {
    const vdi = ref();
    const vbd = ref();
    vdis.add(vdi);
    vbds.set(vbd, vdi);
    return vbd;
  };
  const addVm = (fields: Partial<XenVm> & Pick<XenVm, 'name_label'>): XenVm => {
    const vm: XenVm = { ref: ref(), uuid: randomUUID(), power_state: 'Halted', is_a_template: false, is_a_snapshot: false, snapshot_of: NULL_REF, snapshots: [], VBDs: [], provisioned: false, ...fields };
    vms.set(vm.ref, vm);
    return vm;
  };
  for (const name of opts.templates ?? ['Windows 11 VDI template']) addVm({ name_label: name, is_a_template: true, VBDs: [addDisk()] });

  const vmOf = (r: unknown): XenVm => {
    const vm = typeof r === 'string' ? vms.get(r) : undefined;
    return vm ?? fail('HANDLE_INVALID', 'VM', String(r));
  };
  const str = (v: unknown, method: string): string => (typeof v === 'string' ? v : fail('FIELD_TYPE_ERROR', method));
  const bool = (v: unknown, method: string): boolean => (typeof v === 'boolean' ? v : fail('FIELD_TYPE_ERROR', method));
  const lower = (s: XenVm['power_state']): string => s.toLowerCase();
  const needPower = (vm: XenVm, expected: XenVm['power_state']): void => {
    if (vm.power_state !== expected) fail('VM_BAD_POWER_STATE', vm.ref, lower(expected), lower(vm.power_state));
  };
  const copyDisks = (from: XenVm): string[] => from.VBDs.map(() => addDisk());

  /** The synchronous calls: the arguments after the session, the result. */
  const sync: Record<string, { arity: number; run: (args: unknown[]) => unknown }> = {
    'VM.get_by_name_label': { arity: 1, run: ([name]) => [...vms.values()].filter((v) => v.name_label === name).map((v) => v.ref) },
    'VM.get_by_uuid': { arity: 1, run: ([uuid]) => [...vms.values()].find((v) => v.uuid === uuid)?.ref ?? fail('UUID_INVALID', 'VM', String(uuid)) },
    'VM.get_record': {
      arity: 1,
      run: ([r]) => {
        const { ref: _ref, provisioned: _p, ...rec } = vmOf(r);
        return rec;
      },
    },
    'VM.get_power_state': { arity: 1, run: ([r]) => vmOf(r).power_state },
    'VM.clone': {
      arity: 2,
      run: ([r, name]) => {
        const src = vmOf(r);
        if (src.is_a_template) {
          // A clone of a template is a template too, without disks until VM.provision creates them.
          return addVm({ name_label: str(name, 'new_name'), is_a_template: true }).ref;
        }
        needPower(src, 'Halted');
        return addVm({ name_label: str(name, 'new_name'), VBDs: copyDisks(src), provisioned: true }).ref;
      },
    },
    'VM.provision': {
      arity: 1,
      run: ([r]) => {
        const vm = vmOf(r);
        if (!vm.is_a_template) fail('PROVISION_ONLY_ALLOWED_ON_TEMPLATE');
        if (!vm.provisioned) {
          vm.VBDs = [addDisk()];
          vm.provisioned = true;
        }
        return '';
      },
    },
    'VM.set_is_a_template': {
      arity: 2,
      run: ([r, value]) => {
        const vm = vmOf(r);
        vm.is_a_template = bool(value, 'value');
        return '';
      },
    },
    'VM.start': {
      arity: 3,
      run: ([r, paused, force]) => {
        const vm = vmOf(r);
        bool(paused, 'start_paused');
        bool(force, 'force');
        if (vm.is_a_template) fail('VM_IS_TEMPLATE', vm.ref, 'start');
        if (vm.is_a_snapshot) fail('VM_IS_SNAPSHOT', vm.ref, 'start');
        needPower(vm, 'Halted');
        if (!vm.provisioned) fail('VM_REQUIRES_VDI', vm.ref, NULL_REF);
        vm.power_state = paused === true ? 'Paused' : 'Running';
        return '';
      },
    },
    'VM.clean_shutdown': {
      arity: 1,
      run: ([r]) => {
        const vm = vmOf(r);
        needPower(vm, 'Running');
        vm.power_state = 'Halted';
        return '';
      },
    },
    'VM.hard_shutdown': {
      arity: 1,
      run: ([r]) => {
        const vm = vmOf(r);
        if (vm.power_state === 'Halted') fail('VM_BAD_POWER_STATE', vm.ref, 'running', 'halted');
        vm.power_state = 'Halted';
        return '';
      },
    },
    'VM.snapshot': {
      arity: 2,
      run: ([r, name]) => {
        const vm = vmOf(r);
        if (vm.is_a_template) fail('VM_IS_TEMPLATE', vm.ref, 'snapshot');
        const snap = addVm({ name_label: str(name, 'new_name'), is_a_snapshot: true, snapshot_of: vm.ref, VBDs: copyDisks(vm), provisioned: true });
        vm.snapshots.push(snap.ref);
        return snap.ref;
      },
    },
    'VM.revert': {
      arity: 1,
      run: ([r]) => {
        const snap = vmOf(r);
        if (!snap.is_a_snapshot) fail('VM_NOT_A_SNAPSHOT', snap.ref);
        const vm = vms.get(snap.snapshot_of) ?? fail('VM_SNAPSHOT_WITH_QUIESCE_FAILED', snap.ref);
        // A reverted VM is in the state the snapshot was taken in; disk snapshots carry no memory, so it is halted.
        vm.power_state = 'Halted';
        return '';
      },
    },
    'VM.destroy': {
      arity: 1,
      run: ([r]) => {
        const vm = vmOf(r);
        needPower(vm, 'Halted');
        vms.delete(vm.ref);
        for (const vbd of vm.VBDs) vbds.delete(vbd);
        const parent = vms.get(vm.snapshot_of);
        if (parent) parent.snapshots = parent.snapshots.filter((s) => s !== vm.ref);
        for (const s of vm.snapshots) {
          const snap = vms.get(s);
          if (snap) snap.snapshot_of = NULL_REF;
        }
        return '';
      },
    },
    'VM.get_VBDs': { arity: 1, run: ([r]) => [...vmOf(r).VBDs] },
    'VBD.get_VDI': { arity: 1, run: ([r]) => (typeof r === 'string' && vbds.has(r) ? vbds.get(r) : fail('HANDLE_INVALID', 'VBD', String(r))) },
    'VDI.destroy': {
      arity: 1,
      run: ([r]) => {
        if (typeof r !== 'string' || !vdis.has(r)) fail('HANDLE_INVALID', 'VDI', String(r));
        if ([...vbds.values()].includes(r as string)) fail('VDI_IN_USE', String(r), 'destroy');
        vdis.delete(r as string);
        return '';
      },
    },
    'task.get_record': {
      arity: 1,
      run: ([r]) => {
        const { ref: _ref, ...rec } = taskOf(r);
        return rec;
      },
    },
    'task.get_status': { arity: 1, run: ([r]) => taskOf(r).status },
    'task.get_result': { arity: 1, run: ([r]) => taskOf(r).result },
    'task.get_error_info': { arity: 1, run: ([r]) => taskOf(r).error_info },
    'task.destroy': {
      arity: 1,
      run: ([r]) => {
        tasks.delete(taskOf(r).ref);
        return '';
      },
    },
  };
  const taskOf = (r: unknown): XenTask => (typeof r === 'string' ? tasks.get(r) : undefined) ?? fail('HANDLE_INVALID', 'task', String(r));

  /** `Async.<call>`: a pending task now; the call runs when the task completes. */
  const startTask = (method: string, args: unknown[]): string => {
    const inner = sync[method] ?? fail('MESSAGE_METHOD_UNKNOWN', `Async.${method}`);
    const task: XenTask = { ref: ref(), uuid: randomUUID(), name_label: `Async.${method}`, status: 'pending', progress: 0, result: '', error_info: [] };
    tasks.set(task.ref, task);
    const timer = setTimeout(() => {
      timers.delete(timer);
      try {
        const out = inner.run(args);
        task.status = 'success';
        // XAPI stores a task's result as XML-RPC text: a reference comes back as <value>OpaqueRef:...</value>.
        task.result = typeof out === 'string' && out !== '' ? `<value>${out}</value>` : '';
      } catch (e) {
        if (!(e instanceof XenFailure)) throw e;
        task.status = 'failure';
        task.error_info = [e.code, ...e.params];
      }
      task.progress = 1;
    }, delay);
    timers.add(timer);
    return task.ref;
  };

  const call = (method: string, params: unknown[]): unknown => {
    if (method === 'session.login_with_password') {
      if (params.length < 2 || params.length > 4) fail('MESSAGE_PARAMETER_COUNT_MISMATCH', method, '4', String(params.length));
      if (params[0] !== username || params[1] !== password) fail('SESSION_AUTHENTICATION_FAILED', String(params[0]), 'Authentication failure');
      const s = ref();
      sessions.add(s);
      return s;
    }
    const session = params[0];
    if (typeof session !== 'string' || !sessions.has(session)) fail('SESSION_INVALID', String(session));
    if (method === 'session.logout') {
      sessions.delete(session as string);
      return '';
    }
    const isAsync = method.startsWith('Async.');
    const name = isAsync ? method.slice('Async.'.length) : method;
    const entry = sync[name];
    if (!entry || (isAsync && name.startsWith('task.'))) fail('MESSAGE_METHOD_UNKNOWN', method);
    const args = params.slice(1);
    if (args.length !== entry!.arity) fail('MESSAGE_PARAMETER_COUNT_MISMATCH', method, String(entry!.arity + 1), String(params.length));
    return isAsync ? startTask(name, args) : entry!.run(args);
  };

  const handle = (body: string, res: http.ServerResponse): void => {
    let req: { jsonrpc?: unknown; method?: unknown; params?: unknown; id?: unknown };
    try {
      req = JSON.parse(body) as typeof req;
    } catch {
      return sendJson(res, 200, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
    }
    const id = req.id ?? null;
    if (typeof req.method !== 'string' || !Array.isArray(req.params)) {
      return sendJson(res, 200, { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request' }, id });
    }
    calls.push(req.method);
    try {
      sendJson(res, 200, { jsonrpc: '2.0', result: call(req.method, req.params), id });
    } catch (e) {
      if (!(e instanceof XenFailure)) throw e;
      sendJson(res, 200, { jsonrpc: '2.0', error: { code: 1, message: e.code, data: e.params }, id });
    }
  };

  const server = await startLoopbackServer((req, res) => {
    const path = req.url.split('?')[0] ?? '';
    if (req.method !== 'POST' || !(path === '/jsonrpc' || path.startsWith('/jsonrpc'))) return sendJson(res, 404, { error: 'not found' });
    handle(req.body, res);
  });
  const close = server.close.bind(server);
  return Object.assign(server, {
    username,
    password,
    vms,
    vdis,
    sessions,
    tasks,
    calls,
    templateRef: (name: string) => [...vms.values()].find((v) => v.is_a_template && v.name_label === name)?.ref ?? '',
    close: async () => {
      for (const t of timers) clearTimeout(t);
      await close();
    },
  });
}
