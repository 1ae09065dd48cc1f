// Reliability and security end to end over VXLAN fans (userspace VXLAN
// dataplane): the suite of test/suites/hostile.ts, as for IPIP.
import { hostileSuite } from './suites/hostile.js';

hostileSuite('vxlan');
