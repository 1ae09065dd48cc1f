// Shared by the addon's files: includes, limits, and the error and argument
// helpers every binding uses. Each concern lives in its own file:
//   common.c   errors and argument checking
//   tun.c      TUN queues
//   csum.c     Internet checksums (RFC 1071)
//   sockets.c  raw IPv4 and AF_PACKET sockets, batched receive and send
//   poll.c     poll, eventfd, close
//   notify.c   sd_notify
//   netlink.c  rtnetlink requests, long-lived netlink sockets watched
//              from the event loop (uv_poll), interface indexes
//   netlink.c  rtnetlink requests, interface indexes
//   udp.c      UDP sockets with segmentation/GRO offloads, TAP writev (VXLAN)
//   bpf.c      bpf(2): maps, program load, test runs (the ebpf dataplane's loader)
//   module.c   the exported names
#ifndef FAND_COMMON_H
#define FAND_COMMON_H

#define _GNU_SOURCE
#define NAPI_VERSION 8

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/if_tun.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>

#include <node_api.h>

// Largest batch (packets per call, fds per poll). Stack use per call is at
// most about FAND_MAX_BATCH * 200 bytes (sendBatch), well within a worker's stack.
#define FAND_MAX_BATCH 256

// UDP segmentation offload flags for TUNSETOFFLOAD: in the kernel uapi since
// Linux 6.2 (include/uapi/linux/if_tun.h), missing from older userspace headers.
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

// Extended ACK (error strings in NLMSG_ERROR replies): Linux 4.12,
// include/uapi/linux/netlink.h. SOL_NETLINK: include/linux/socket.h.
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

// Receive buffer of netlinkRequest: one reply (an ACK, or an error echoing
// the request) fits with room to spare.
#define FAND_NETLINK_REPLY_MAX 65536

// Receive buffer of netlinkRequest: one reply (an ACK, or an error echoing

// ---------------------------------------------------------------------------
// Errors (common.c). Each returns NULL after setting a pending exception, so
// callers can `return throw_...(...)`.
napi_value throw_errno(napi_env env, int err, const char *syscall,
                       const char *context, const char *detail);
napi_value throw_range(napi_env env, const char *fn, const char *what);
napi_value throw_type(napi_env env, const char *fn, const char *what);

// ---------------------------------------------------------------------------
// Arguments (common.c). Each getter returns 0 on success, -1 after throwing.
#define MAX_ARGS 12

typedef struct {
  napi_env env;
  const char *fn;
  size_t argc;
  napi_value argv[MAX_ARGS];
} args_t;

int args_init(napi_env env, napi_callback_info info, const char *fn, size_t need, args_t *a);
int arg_int(args_t *a, size_t i, const char *name, int32_t *out);
int arg_int_in(args_t *a, size_t i, const char *name, int32_t lo, int32_t hi, int32_t *out);
int arg_fd(args_t *a, size_t i, int *out);
int arg_bool(args_t *a, size_t i, const char *name, bool *out);
int arg_typed(args_t *a, size_t i, const char *name, napi_typedarray_type want,
              const char *want_name, void **data, size_t *len);
int arg_u8(args_t *a, size_t i, const char *name, uint8_t **data, size_t *len);
int arg_i32(args_t *a, size_t i, const char *name, size_t need, int32_t **data);
int arg_u32(args_t *a, size_t i, const char *name, size_t need, uint32_t **data);
int arg_str(args_t *a, size_t i, const char *name, char *buf, size_t max, bool *too_long);
int check_slots(args_t *a, size_t len, int32_t slot, int32_t headroom, int32_t count);
int check_spans(args_t *a, size_t len, const int32_t *offsets, const int32_t *sizes, int32_t count);
napi_value ret_int(napi_env env, int64_t v);
napi_value ret_undefined(napi_env env);
napi_value ret_bool(napi_env env, bool v);

// ---------------------------------------------------------------------------
// Bindings, one group per file; module.c exports them.
napi_value tun_open(napi_env env, napi_callback_info info);
napi_value tun_set_offload(napi_env env, napi_callback_info info);
napi_value tun_set_vnet_hdr_size(napi_env env, napi_callback_info info);
napi_value tun_read(napi_env env, napi_callback_info info);
napi_value tun_write(napi_env env, napi_callback_info info);
napi_value raw_open(napi_env env, napi_callback_info info);
napi_value attach_filter(napi_env env, napi_callback_info info);
napi_value raw_recv(napi_env env, napi_callback_info info);
napi_value raw_send(napi_env env, napi_callback_info info);
napi_value send_batch(napi_env env, napi_callback_info info);
napi_value packet_open(napi_env env, napi_callback_info info);
napi_value do_poll(napi_env env, napi_callback_info info);
napi_value eventfd_open(napi_env env, napi_callback_info info);
napi_value eventfd_signal(napi_env env, napi_callback_info info);
napi_value eventfd_drain(napi_env env, napi_callback_info info);
napi_value do_close(napi_env env, napi_callback_info info);
napi_value sd_notify(napi_env env, napi_callback_info info);
napi_value if_index(napi_env env, napi_callback_info info);
napi_value netlink_request(napi_env env, napi_callback_info info);
napi_value netlink_open(napi_env env, napi_callback_info info);
napi_value netlink_join(napi_env env, napi_callback_info info);
napi_value netlink_port_id(napi_env env, napi_callback_info info);
napi_value str_error(napi_env env, napi_callback_info info);
napi_value netlink_send(napi_env env, napi_callback_info info);
napi_value netlink_recv(napi_env env, napi_callback_info info);
napi_value netlink_watch(napi_env env, napi_callback_info info);
napi_value netlink_unwatch(napi_env env, napi_callback_info info);
napi_value bpf_map_create(napi_env env, napi_callback_info info);
napi_value bpf_map_update(napi_env env, napi_callback_info info);
napi_value bpf_map_lookup(napi_env env, napi_callback_info info);
napi_value bpf_map_delete(napi_env env, napi_callback_info info);
napi_value bpf_prog_load(napi_env env, napi_callback_info info);
napi_value bpf_prog_test_run(napi_env env, napi_callback_info info);
napi_value bpf_prog_info(napi_env env, napi_callback_info info);

// Socket buffer sizes: the FORCE variant first (root), the plain one otherwise (sockets.c).
int set_buf(int fd, int force_opt, int opt, int32_t size);
// sendmmsg of msgs[0, n), skipping refused messages, stopping at a full queue (sockets.c).
struct mmsghdr;
int32_t send_all(int fd, struct mmsghdr *msgs, int32_t n, int32_t *status);

// UDP for the VXLAN dataplane, and TAP queues (udp.c, tun.c).
napi_value udp_open(napi_env env, napi_callback_info info);
napi_value udp_local_port(napi_env env, napi_callback_info info);
napi_value udp_set_gro(napi_env env, napi_callback_info info);
napi_value udp_attach_reuseport(napi_env env, napi_callback_info info);
napi_value udp_get_gro(napi_env env, napi_callback_info info);
napi_value udp_probe(napi_env env, napi_callback_info info);
napi_value udp_send_batch(napi_env env, napi_callback_info info);
napi_value udp_recv_batch(napi_env env, napi_callback_info info);
napi_value tun_write_v(napi_env env, napi_callback_info info);
napi_value tap_open(napi_env env, napi_callback_info info);

#endif
