/**
 * Imported just before `pg`, which asks at load time whether it runs in a Cloudflare Worker: it
 * looks for `navigator.userAgent`, and failing that constructs a fetch `Response`. Node 21 and
 * later define `navigator`; on Node 20 the `Response` loads undici, 25-30 ms of the start-up of
 * every command that connects. Giving Node 20 the `navigator` that later versions have answers
 * pg's question at once.
 */
const scope = globalThis as { navigator?: unknown };
if (scope.navigator === undefined) {
  Object.defineProperty(globalThis, 'navigator', {
    value: { userAgent: `Node.js/${process.versions.node.split('.')[0]}` },
    configurable: true,
    writable: true,
  });
}
