import dns from 'node:dns';

/**
 * Makes host names matching `pattern` resolve to 127.0.0.1 in this test process (node:dns `lookup`, which the HTTP
 * agents use), every other name as before; returns the undo. For runbooks that reach devices by name (the sample VDI
 * runbook's WinRM steps): nothing resolves test names here, and /etc/hosts is not the test's to change.
 */
export function routeNamesToLoopback(pattern: RegExp): () => void {
  const original = dns.lookup;
  const lookup = (hostname: string, options: unknown, callback?: unknown): void => {
    const cb = (typeof options === 'function' ? options : callback) as (...args: unknown[]) => void;
    const opts = (typeof options === 'object' && options !== null ? options : {}) as { all?: boolean };
    if (pattern.test(hostname)) {
      if (opts.all) process.nextTick(cb, null, [{ address: '127.0.0.1', family: 4 }]);
      else process.nextTick(cb, null, '127.0.0.1', 4);
      return;
    }
    (original as (...args: unknown[]) => void).call(dns, hostname, options, callback);
  };
  (dns as { lookup: unknown }).lookup = lookup;
  return () => {
    (dns as { lookup: unknown }).lookup = original;
  };
}
