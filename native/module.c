
// The module: every binding under its JavaScript name, and the constants
// the TypeScript side needs. Context-aware, so it loads in worker_threads.
#include "common.h"

// ---------------------------------------------------------------------------
// Module

static void set_const(napi_env env, napi_value obj, const char *name, int64_t v) {
  napi_set_named_property(env, obj, name, ret_int(env, v));
}

NAPI_MODULE_INIT() {
  napi_property_descriptor fns[] = {
#define FN(js, c) {js, NULL, c, NULL, NULL, NULL, napi_enumerable, NULL}
      FN("tunOpen", tun_open),
      FN("tunSetOffload", tun_set_offload),
      FN("tunSetVnetHdrSize", tun_set_vnet_hdr_size),
      FN("tunRead", tun_read),
      FN("tunWrite", tun_write),
      FN("rawOpen", raw_open),
      FN("attachFilter", attach_filter),
      FN("rawRecv", raw_recv),
      FN("rawSend", raw_send),
      FN("sendBatch", send_batch),
      FN("packetOpen", packet_open),
      FN("poll", do_poll),
      FN("eventfdOpen", eventfd_open),
      FN("eventfdSignal", eventfd_signal),
      FN("eventfdDrain", eventfd_drain),
      FN("close", do_close),
      FN("sdNotify", sd_notify),
      FN("ifIndex", if_index),
      FN("netlinkRequest", netlink_request),
      FN("netlinkOpen", netlink_open),
      FN("netlinkJoin", netlink_join),
      FN("netlinkPortId", netlink_port_id),
      FN("strerror", str_error),
      FN("netlinkSend", netlink_send),
      FN("netlinkRecv", netlink_recv),
      FN("netlinkWatch", netlink_watch),
      FN("netlinkUnwatch", netlink_unwatch),
      FN("udpOpen", udp_open),
      FN("udpLocalPort", udp_local_port),
      FN("udpSetGro", udp_set_gro),
      FN("udpAttachReuseport", udp_attach_reuseport),
      FN("udpGetGro", udp_get_gro),
      FN("udpProbe", udp_probe),
      FN("udpSendBatch", udp_send_batch),
      FN("udpRecvBatch", udp_recv_batch),
      FN("tunWriteV", tun_write_v),
      FN("tapOpen", tap_open),
      FN("bpfMapCreate", bpf_map_create),
      FN("bpfMapUpdate", bpf_map_update),
      FN("bpfMapLookup", bpf_map_lookup),
      FN("bpfMapDelete", bpf_map_delete),
      FN("bpfProgLoad", bpf_prog_load),
      FN("bpfProgTestRun", bpf_prog_test_run),
      FN("bpfProgInfo", bpf_prog_info),
#undef FN
  };
  if (napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) != napi_ok)
    return NULL;
  napi_value c;
  if (napi_create_object(env, &c) != napi_ok) return NULL;
  set_const(env, c, "MAX_BATCH", FAND_MAX_BATCH);
  set_const(env, c, "TUN_F_CSUM", TUN_F_CSUM);
  set_const(env, c, "TUN_F_TSO4", TUN_F_TSO4);
  set_const(env, c, "TUN_F_TSO6", TUN_F_TSO6);
  set_const(env, c, "TUN_F_TSO_ECN", TUN_F_TSO_ECN);
  set_const(env, c, "TUN_F_UFO", TUN_F_UFO);
  set_const(env, c, "TUN_F_USO4", TUN_F_USO4);
  set_const(env, c, "TUN_F_USO6", TUN_F_USO6);
  set_const(env, c, "POLLIN", POLLIN);
  set_const(env, c, "POLLOUT", POLLOUT);
  set_const(env, c, "POLLERR", POLLERR);
  set_const(env, c, "POLLHUP", POLLHUP);
  set_const(env, c, "IPPROTO_IPIP", IPPROTO_IPIP);
  set_const(env, c, "IPPROTO_RAW", IPPROTO_RAW);
  napi_set_named_property(env, exports, "constants", c);
  return exports;
}
