import { ACTIVE_STATUSES, canTransition, isOrderStatus, ORDER_STATUSES, ORDER_TRANSITIONS, TERMINAL_STATUSES, type OrderStatus } from './order-status';

describe('order state machine', () => {
  test('knows exactly the ten statuses of the orders table', () => {
    expect([...ORDER_STATUSES].sort()).toEqual(
      ['pending_approval', 'scheduled', 'processing', 'provisioning', 'provisioned', 'failed', 'cancelled', 'deprovisioning', 'returned', 'revoked'].sort(),
    );
    expect(isOrderStatus('processing')).toBe(true);
    expect(isOrderStatus('done')).toBe(false);
  });

  test('cancelled, returned and revoked are terminal; nothing else is', () => {
    expect([...TERMINAL_STATUSES].sort()).toEqual(['cancelled', 'returned', 'revoked']);
  });

  test('active statuses (capacity and quota) are the non-terminal ones except failed', () => {
    expect([...ACTIVE_STATUSES].sort()).toEqual(['deprovisioning', 'pending_approval', 'processing', 'provisioned', 'provisioning', 'scheduled']);
  });

  test('every transition targets a known status and none loops onto itself', () => {
    for (const [from, targets] of Object.entries(ORDER_TRANSITIONS)) {
      for (const to of targets) {
        expect(isOrderStatus(to)).toBe(true);
        expect(to).not.toBe(from);
      }
    }
  });

  test('every status is reachable from the two starting statuses', () => {
    const seen = new Set<OrderStatus>(['pending_approval', 'processing']);
    const queue = [...seen];
    while (queue.length) for (const to of ORDER_TRANSITIONS[queue.shift()!]) if (!seen.has(to)) (seen.add(to), queue.push(to));
    expect([...seen].sort()).toEqual([...ORDER_STATUSES].sort());
  });

  test.each<[OrderStatus, OrderStatus]>([
    ['pending_approval', 'processing'],
    ['pending_approval', 'scheduled'],
    ['pending_approval', 'cancelled'],
    ['scheduled', 'processing'],
    ['processing', 'provisioning'],
    ['processing', 'provisioned'],
    ['processing', 'failed'],
    ['provisioning', 'provisioned'],
    ['provisioned', 'deprovisioning'],
    ['provisioned', 'revoked'],
    ['provisioned', 'returned'],
    ['deprovisioning', 'returned'],
    ['deprovisioning', 'failed'],
    ['failed', 'processing'],
    ['failed', 'deprovisioning'],
  ])('%s -> %s is allowed', (from, to) => {
    expect(canTransition(from, to)).toBe(true);
  });

  test.each<[OrderStatus, OrderStatus]>([
    ['pending_approval', 'provisioned'],
    ['pending_approval', 'deprovisioning'],
    ['scheduled', 'provisioned'],
    ['processing', 'deprovisioning'],
    ['processing', 'returned'],
    ['provisioning', 'cancelled'],
    ['provisioned', 'processing'],
    ['provisioned', 'cancelled'],
    ['deprovisioning', 'provisioned'],
    ['failed', 'provisioned'],
    ['cancelled', 'processing'],
    ['returned', 'provisioned'],
    ['revoked', 'deprovisioning'],
  ])('%s -> %s is refused', (from, to) => {
    expect(canTransition(from, to)).toBe(false);
  });
});
