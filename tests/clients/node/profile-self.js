// A real @pyroscope/nodejs client profiling itself, for ProfileArena's server tests (see
// tests/ProfileArena.Tests/Server/NodeClientTests.cs and README "Running the server").
//
//   node profile-self.js SERVER_URL APP_NAME CLIENT SECONDS [AUTH_TOKEN]
//
// CLIENT is "0.6" (@pyroscope/nodejs 0.6.x: raw gzipped pprof, format=pprof) or "0.4" (the npm alias
// pyroscope-04 = @pyroscope/nodejs 0.4.x: multipart form with a "profile" part, no format).
// It burns CPU in named functions for SECONDS (and at least SECONDS/2 of CPU time), then awaits stop(), which
// flushes the last profile.
'use strict';

const [serverAddress, appName, client, secondsText, authToken] = process.argv.slice(2);
if (!serverAddress || !appName || !client || !secondsText) {
  console.error('usage: node profile-self.js SERVER_URL APP_NAME 0.6|0.4 SECONDS [AUTH_TOKEN]');
  process.exit(2);
}
const Pyroscope = require(client === '0.4' ? 'pyroscope-04' : '@pyroscope/nodejs').default
  ?? require(client === '0.4' ? 'pyroscope-04' : '@pyroscope/nodejs');

function arenaBusyLeafHashing(n) {
  let h = 0;
  for (let i = 0; i < n; i++) h = (h * 31 + i) | 0;
  return h;
}

function arenaBusyMiddleSorting(n) {
  const values = [];
  for (let i = 0; i < n; i++) values.push((i * 7919) % 1000);
  values.sort((a, b) => a - b);
  return values[0] + arenaBusyLeafHashing(n * 20);
}

function arenaBusyOuterLoop(deadline) {
  let sink = 0;
  while (Date.now() < deadline) sink += arenaBusyMiddleSorting(2000);
  return sink;
}

async function main() {
  const logs = [];
  Pyroscope.init({
    serverAddress,
    appName,
    tags: { test: 'node-client', client },
    flushIntervalMs: 1000,
    ...(authToken ? { authToken } : {}),
  });
  Pyroscope.start();
  // Burn for SECONDS of wall time and at least half of that in CPU time: on a machine busy with other work
  // the process may get little CPU, and a profile of a few samples could miss a function. Bounded: at most
  // ten times SECONDS of wall time.
  const seconds = Number(secondsText);
  const started = Date.now();
  const cpuStart = process.cpuUsage();
  const cpuSeconds = () => process.cpuUsage(cpuStart).user / 1e6;
  let sink = 0;
  // Yield to the event loop between slices so the profiler's timers (flushes) run.
  while ((Date.now() - started < seconds * 1000 || cpuSeconds() < seconds / 2) && Date.now() - started < seconds * 10000) {
    sink += arenaBusyOuterLoop(Date.now() + 200);
    await new Promise((resolve) => setImmediate(resolve));
  }
  // One more turn of the event loop before stop(): 0.4.x's continuous profiler queues its round with
  // setImmediate from a timer, and a stop() that runs between the two (in the same check phase, right after
  // our own immediate) leaves that round to call profile() on a stopped wall profiler, which throws
  // "Wall profiler is not started" out of the event loop (a client bug). An immediate queued now runs after it.
  await new Promise((resolve) => setImmediate(resolve));
  await Pyroscope.stop();
  console.log(`done ${client} ${sink !== 0} ${logs.length}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
