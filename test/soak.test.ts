// The soak test, short: 3 hosts, 35 s of mixed traffic, one SIGKILL of a
// daemon at 15 s. `npm run soak` is the long version (bench/soak.ts).
import test from 'ava';
import { BOUNDS, formatSummary, runSoak } from '../bench/soak.js';

test('soak: traffic stays intact across a killed daemon, which repairs its host', async (t) => {
  t.timeout(90_000);
  const s = await runSoak({ seconds: 35, restartEvery: 15, maxRestarts: 1, hosts: 3, tcpTimeoutS: 10, log: (l) => t.log(l) });
  t.log(formatSummary(s));
  t.is(s.tcp.corrupted, 0, 'no completed transfer differs from what was sent');
  t.is(s.tcp.failed, 0, 'transfers between hosts that were not restarting all succeed');
  t.true(s.tcp.ok > 0);
  t.is(s.udp.bad, 0, 'no corrupted datagram');
  t.is(s.udp.duplicates, 0, 'no datagram twice');
  t.true(s.udp.runs > 0);
  t.is(s.ping.failed, 0);
  t.is(s.restarts.length, 1);
  const r = s.restarts[0]!;
  t.is(r.signal, 'SIGKILL');
  t.true(r.upMs !== null && r.upMs <= BOUNDS.upMs, `fand came back (up after ${r.upMs} ms)`);
  t.true(r.repaired, 'the new daemon repaired the state the killed one left');
  t.false(r.reattached, 'the bridge and its ports survived the kill');
  t.true(r.resumeMs !== null && r.resumeMs <= BOUNDS.resumeMs, `traffic resumed (${r.resumeMs} ms after up)`);
  t.true(s.counters.length === 3 && s.counters.every((c) => c.ok), 'counters add up on every host');
  t.true(s.rss.every((x) => x.ok));
  t.deepEqual(s.failures, []);
  t.true(s.ok);
});
