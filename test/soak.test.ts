// The soak test, short: 3 hosts, 45 s of mixed traffic, a SIGKILL of one
// daemon at 15 s and a SIGTERM of another at 30 s; neither may need the
// containers re-attached. `npm run soak` is the long version (bench/soak.ts).
// Nothing here is timed: on a busy machine the traffic is slower and the
// restart takes longer; the timings are logged, and only what must happen
// at all (fand back up, traffic flowing again, nothing corrupted) is judged.
import test from 'ava';
import { formatSummary, runSoak } from '../bench/soak.js';

test('soak: traffic stays intact across a killed daemon, which repairs its host, and a stopped one, whose fan the next adopts', async (t) => {
  t.timeout(15 * 60_000); // a cap for a hung run; the soak itself waits for conditions
  const s = await runSoak({ seconds: 45, restartEvery: 15, maxRestarts: 2, hosts: 3, log: (l) => t.log(l) });
  t.log(formatSummary(s));
  t.is(s.tcp.corrupted, 0, 'no completed transfer differs from what was sent');
  t.is(s.tcp.failed, 0, 'transfers between hosts that were not restarting all succeed');
  t.true(s.tcp.ok > 0);
  t.is(s.udp.bad, 0, 'no corrupted datagram');
  t.is(s.udp.duplicates, 0, 'no datagram twice');
  t.is(s.udp.misdelivered, 0, 'no datagram at the wrong socket');
  t.true(s.udp.runs > 0);
  t.is(s.ping.failed, 0);
  t.deepEqual(s.restarts.map((r) => r.signal), ['SIGKILL', 'SIGTERM']);
  for (const r of s.restarts) {
    t.log(`${r.signal}: up after ${r.upMs} ms, traffic after ${r.resumeMs} ms more`);
    t.true(r.upMs !== null, `fand did not come back after ${r.signal}: ${r.error}`);
    t.false(r.reattached, `the bridge and its ports did not survive ${r.signal}`);
    t.true(r.resumeMs !== null, `traffic through the host did not resume after ${r.signal}`);
  }
  t.true(s.restarts[0]!.repaired, 'the new daemon repaired the state the killed one left');
  t.true(s.restarts[1]!.adopted, 'the new daemon adopted the fan the stopped one kept');
  t.is(s.restarts[1]!.exitCode, 0);
  t.true(s.counters.length === 3 && s.counters.every((c) => c.ok), 'counters add up on every host');
  t.true(s.rss.every((x) => x.ok));
  t.deepEqual(s.failures, []);
  t.true(s.ok);
});
