// One naming scheme for counters (src/dataplane/counter-names.ts): the keys
// dataplanes report, split into counters and drop reasons, and `fand show`'s
// table built from them. What a running daemon shows is metrics-e2e.test.ts.
import test from 'ava';
import { DROP_REASONS, dropDirection, dropKey, dropReasonOf, droppedTotal, nameCounts } from '../src/dataplane/counter-names.js';
import { DROP_NAMES } from '../src/dataplane/counters.js';
import { formatShow, type ShowReply } from '../src/cli/show.js';

test('drop keys carry the reason; everything else is a counter', (t) => {
  t.is(dropKey('in.spoofed-source'), 'drop.in.spoofed-source');
  t.is(dropReasonOf('drop.in.spoofed-source'), 'in.spoofed-source');
  t.is(dropReasonOf('in.received'), undefined, 'in.received counts what came in; it is not a drop');
  t.is(dropReasonOf('out.read'), undefined);
  t.deepEqual(nameCounts({ 'tx.packets': 9, 'out.read': 12, [dropKey('out.bad-underlay')]: 3, [dropKey('in.truncated')]: 2 }), {
    counters: { 'tx.packets': 9, 'out.read': 12 },
    drops: { 'out.bad-underlay': 3, 'in.truncated': 2 },
  });
  t.is(dropDirection('out.bad-underlay'), 'tx');
  t.is(dropDirection('in.spoofed-source'), 'rx');
  t.is(dropDirection('tunl0-rx-errors'), undefined, 'a reason names its direction');
  t.is(droppedTotal({ 'out.a': 1, 'in.b': 2, 'in.c': 4 }), 7);
  t.is(droppedTotal({ 'out.a': 1, 'in.b': 2, 'in.c': 4 }, 'rx'), 6);
});

test('every drop reason a dataplane reports is described and names its direction', (t) => {
  for (const r of DROP_NAMES) t.truthy(DROP_REASONS[r], `${r} has no description`);
  for (const r of Object.keys(DROP_REASONS)) t.truthy(dropDirection(r), `${r} is not out.* or in.*`);
});

test('fand show: the Dropped column sums the reasons, listed by name under the table', (t) => {
  const reply: ShowReply = {
    pid: 42,
    dataplane: { mode: 'userspace', reason: 'no kernel Fan' },
    workers: { alive: 2, configured: 2 },
    fans: [
      { bridge: 'fan-250-1-10', overlay: '250.0.0.0/8', underlay: '172.16.1.10/16', bridgeAddress: '250.1.10.1', mtu: 1480, hostReserve: 1, dhcp: true,
        counters: { 'tx.packets': 12, 'rx.packets': 10, 'out.read': 15 }, drops: { 'out.bad-underlay': 3, 'in.truncated': 2, 'in.spoofed-source': 5, 'in.tun-error': 0 } },
      { bridge: 'fan-10-1-10', overlay: '10.0.0.0/8', underlay: '172.16.1.10/16', bridgeAddress: '10.1.10.1', mtu: 1480, hostReserve: 3, dhcp: false,
        counters: {}, drops: {} },
    ],
  };
  t.is(formatShow(reply), [
    'Bridge        Overlay      Underlay        Flags                Dataplane  Encap  MTU   Tx pkts  Rx pkts  Dropped',
    'fan-250-1-10  250.0.0.0/8  172.16.1.10/16  dhcp host-reserve 1  userspace  ipip   1480  12       10       10',
    'fan-10-1-10   10.0.0.0/8   172.16.1.10/16  host-reserve 3       userspace  ipip   1480  0        0        0',
    '',
    'dataplane userspace: no kernel Fan; workers 2/2; pid 42',
    'fan-250-1-10 dropped: in.spoofed-source=5 out.bad-underlay=3 in.truncated=2',
    '',
  ].join('\n'));
});
