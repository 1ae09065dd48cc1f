// End to end over VXLAN fans (userspace VXLAN dataplane): the suite of
// test/suites/e2e.ts, as for IPIP.
import { e2eSuite } from './suites/e2e.js';

e2eSuite('vxlan');
