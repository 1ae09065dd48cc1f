// Loads the addon in a worker thread and exercises it a little.
import { parentPort } from 'node:worker_threads';
import { native } from '../../src/native/index.js';

const efd = native.eventfdOpen();
native.eventfdSignal(efd);
const fds = Int32Array.of(efd), events = Int32Array.of(native.constants.POLLIN), revents = new Int32Array(1);
const ready = native.poll(fds, events, revents, 1, 1000);
native.eventfdDrain(efd);
const after = native.poll(fds, events, revents, 1, 0);
native.close(efd);
parentPort!.postMessage({ ready, after, maxBatch: native.constants.MAX_BATCH, lo: native.ifIndex('lo') });
