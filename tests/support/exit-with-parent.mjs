// The orphan watchdog of the helper servers the tests spawn as child processes (spnego-server-child.mjs,
// forward-proxy-server.mjs, oidc-provider.mjs): exit with the test process even when it dies without stopping us.

/**
 * Checks every `intervalMs` that the process that started this one is still alive, and exits (0) when it is not.
 * An orphan's ppid changes (re-parented to init or a subreaper), so the first ppid is kept and compared. The timer
 * is unref'd: it never keeps the process alive by itself.
 * @param {number} [intervalMs]
 */
export function exitWithParent(intervalMs = 1000) {
  const parentPid = process.ppid;
  setInterval(() => {
    try {
      if (process.ppid !== parentPid) throw new Error('orphaned');
      process.kill(parentPid, 0);
    } catch {
      process.exit(0);
    }
  }, intervalMs).unref();
}
