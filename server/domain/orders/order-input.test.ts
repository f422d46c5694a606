import type { OrderCreate, ServiceNowOrderRequest } from '../../api/gen/types.gen';
import { CodedError } from '../../errors';
import { toCreateOrderInput } from './order-input';

/** The one field error `fn` throws. */
function fieldError(fn: () => unknown): { path: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof CodedError)) throw err;
    expect(err.code).toBe('VALIDATION_FAILED');
    expect(err.errors).toHaveLength(1);
    return err.errors![0]!;
  }
  throw new Error('expected a validation error');
}

const person = { user_email: 'Ann@Example.com', user_name: 'Ann' };

describe('toCreateOrderInput', () => {
  test('maps an API order, by asset type name or id, with its requester snapshot', () => {
    const body: OrderCreate = {
      ...person,
      asset_type_name: 'VDI',
      owner_email: null,
      requested_from: '2026-01-01T00:00:00Z',
      rdp_users: ['b@example.com'],
      config: { cores: 4 },
      requester: { department: 'Finance' },
    };
    expect(toCreateOrderInput(body, 'api')).toEqual({
      assetType: { name: 'VDI' },
      source: 'api',
      servicenowRef: undefined,
      snowReq: undefined,
      userEmail: 'Ann@Example.com',
      userName: 'Ann',
      ownerEmail: null,
      ownerName: undefined,
      requestedFrom: '2026-01-01T00:00:00Z',
      requestedUntil: undefined,
      rdpUsers: ['b@example.com'],
      adminUsers: undefined,
      config: { cores: 4 },
      requester: { department: 'Finance' },
    });
    expect(toCreateOrderInput({ ...person, asset_type_id: 3 }, 'portal').assetType).toEqual({ id: 3 });
  });

  test('maps a ServiceNow dispatch with its references, the same fields under the same names', () => {
    const body: ServiceNowOrderRequest = {
      servicenow_ref: 'RITM0001',
      snow_req: 'REQ0001',
      action: 'delete',
      ...person,
      asset_type_name: 'VDI',
      requested_from: '2026-01-01T00:00:00Z',
      requested_until: '2026-02-01T00:00:00Z',
    };
    expect(toCreateOrderInput(body, 'servicenow')).toMatchObject({
      assetType: { name: 'VDI' },
      source: 'servicenow',
      servicenowRef: 'RITM0001',
      snowReq: 'REQ0001',
      userEmail: 'Ann@Example.com',
      requestedUntil: '2026-02-01T00:00:00Z',
      requester: undefined,
    });
  });

  test('refuses an asset type named both ways, or not at all, naming the field', () => {
    expect(fieldError(() => toCreateOrderInput({ ...person, asset_type_name: 'VDI', asset_type_id: 3 }, 'api'))).toEqual({
      path: '/body/asset_type_id',
      message: 'give asset_type_name or asset_type_id, not both',
    });
    expect(fieldError(() => toCreateOrderInput(person, 'api'))).toEqual({
      path: '/body/asset_type_name',
      message: 'is required (or asset_type_id)',
    });
  });
});
