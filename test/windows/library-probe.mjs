// Run by Windows Node under Wine (test/windows/windows.test.ts): the
// library's dump() of PID and of a pid no process has, as one JSON line.
//   node library-probe.mjs PACKAGE_INDEX_URL PID
const [url, pid] = process.argv.slice(2);
const { dump } = await import(url);
const out = {};
const live = await dump(Number(pid));
out.threads = live.threads.map((t) => ({ id: t.osThreadId, frames: t.frames.map((f) => f.name) }));
try {
  await dump(999999);
  out.badPid = 'resolved';
} catch (err) {
  out.badPid = err.code;
}
process.stdout.write(`${JSON.stringify(out)}\n`);
