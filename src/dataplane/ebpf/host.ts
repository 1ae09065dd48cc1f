// ensure/teardown of the `tc-bpf` resource (src/host/resources.ts): the hook
// fand's programs run on. ensure makes sure the device has a clsact qdisc
// and records whether fand created it; the dataplane attaches its filter
// (it holds the program). teardown removes fand's filter and, when fand
// created the qdisc and nothing else is attached to it any more, the qdisc.
// A filter left by a killed fand is replaced atomically by the next start
// (tc.ts: NLM_F_REPLACE on the same pref and handle), so ensure need not
// look at it.
import { native } from '../../native/index.js';
import { Tc } from './tc.js';

type TcBpf = { readonly kind: 'tc-bpf'; readonly id: string; readonly dev: string; readonly direction: 'ingress' | 'egress' };

interface HookState {
  /** Whether fand created the device's clsact qdisc (then it removes it when it is empty). */
  readonly clsact: 'created' | 'existed';
}

export class TcHookError extends Error {}

/**
 * Ensures the clsact qdisc for `r`. Returns what to keep in the state file
 * (Created.previous): an earlier run's record wins, since the qdisc it
 * created is still fand's to remove.
 */
export function ensureTcHook(r: TcBpf, ownedPrevious: string | undefined, log: (msg: string) => void, tc = new Tc()): string {
  const ifindex = native.ifIndex(r.dev);
  if (ifindex === 0) throw new TcHookError(`tc ${r.dev} ${r.direction}: no such device`);
  const created = tc.addClsact(r.dev, ifindex);
  if (created) log(`added clsact qdisc to ${r.dev}`);
  const previous: HookState = ownedPrevious ? (JSON.parse(ownedPrevious) as HookState) : { clsact: created ? 'created' : 'existed' };
  return JSON.stringify(previous);
}

/** Removes fand's filter from the hook, and the qdisc where fand created it and it is now empty. */
export function teardownTcHook(r: TcBpf, previous: string | undefined, log: (msg: string) => void, tc = new Tc()): void {
  const ifindex = native.ifIndex(r.dev);
  if (ifindex === 0) { log(`tc ${r.dev} ${r.direction}: the device is gone, and its filters with it`); return; }
  if (tc.detach(r.dev, ifindex, r.direction)) log(`removed fand's bpf filter from ${r.dev} ${r.direction}`);
  const state = previous ? (JSON.parse(previous) as HookState) : { clsact: 'existed' };
  if (state.clsact !== 'created') return;
  const others = [...tc.list(r.dev, ifindex, 'ingress'), ...tc.list(r.dev, ifindex, 'egress')];
  if (others.length > 0) {
    log(`kept the clsact qdisc fand added to ${r.dev}: other filters use it (${others.map((f) => f.name ?? f.kind).join(', ')})`);
    return;
  }
  if (tc.deleteClsact(r.dev, ifindex)) log(`removed the clsact qdisc fand added to ${r.dev}`);
}
