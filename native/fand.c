// fand_native: the syscalls of the fand dataplane, batched.
//
// Thin on purpose: open TUN queues and raw sockets, move batches of packets
// between them and caller-owned buffers, poll, eventfd, sd_notify, and one
// rtnetlink request/reply for the control plane. No policy.
//
// Conventions (see src/native/index.ts for the typed view):
// - fds are plain ints; every fd created here is O_NONBLOCK and O_CLOEXEC.
// - Packet buffers are Uint8Arrays viewed in place (ArrayBuffer or
//   SharedArrayBuffer). Nothing is allocated per packet: per-call arrays live
//   on the stack, sized by FAND_MAX_BATCH; a larger count is a RangeError.
// - Every offset/size is checked against the buffer before any syscall, so
//   bad arguments throw RangeError and never touch memory out of bounds.
// - Syscall failures throw an Error with code ('EBUSY'), errno (positive
//   number, as in os.constants.errno) and syscall ('ioctl(TUNSETIFF)').
// - Context-aware (NAPI_MODULE_INIT) and free of global mutable state, so it
//   loads in worker_threads.

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

// ---------------------------------------------------------------------------
// Errors

// Returns NULL after a pending exception was set, so callers can
// `return throw_...(...)`.
static napi_value throw_errno(napi_env env, int err, const char *syscall,
                              const char *context, const char *detail) {
  const char *code = strerrorname_np(err);
  char codebuf[16];
  if (code == NULL) {
    snprintf(codebuf, sizeof codebuf, "E%d", err);
    code = codebuf;
  }
  char msg[512];
  snprintf(msg, sizeof msg, "%s%s%s: %s (%s)%s%s", context ? context : "",
           context ? ": " : "", syscall, strerror(err), code,
           detail ? ": " : "", detail ? detail : "");
  napi_value jmsg, jcode, jerrno, jsyscall, error;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) != napi_ok ||
      napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode) != napi_ok ||
      napi_create_int32(env, err, &jerrno) != napi_ok ||
      napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &jsyscall) !=
          napi_ok ||
      napi_create_error(env, NULL, jmsg, &error) != napi_ok) {
    napi_throw_error(env, code, msg);
    return NULL;
  }
  napi_set_named_property(env, error, "code", jcode);
  napi_set_named_property(env, error, "errno", jerrno);
  napi_set_named_property(env, error, "syscall", jsyscall);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_range(napi_env env, const char *fn, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", fn, what);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *fn, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", fn, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

// ---------------------------------------------------------------------------
// Arguments. Each getter returns 0 on success, -1 after throwing.

#define MAX_ARGS 12

typedef struct {
  napi_env env;
  const char *fn;
  size_t argc;
  napi_value argv[MAX_ARGS];
} args_t;

static int args_init(napi_env env, napi_callback_info info, const char *fn,
                     size_t need, args_t *a) {
  a->env = env;
  a->fn = fn;
  a->argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &a->argc, a->argv, NULL, NULL) != napi_ok) {
    throw_type(env, fn, "cannot read arguments");
    return -1;
  }
  // A function needing more than MAX_ARGS would read past argv: refuse it
  // loudly at its first call instead (napi_get_cb_info copies at most
  // MAX_ARGS but reports how many were passed).
  if (need > MAX_ARGS) {
    throw_type(env, fn, "declares more arguments than MAX_ARGS");
    return -1;
  }
  if (a->argc > MAX_ARGS) a->argc = MAX_ARGS;
  if (a->argc < need) {
    char what[64];
    snprintf(what, sizeof what, "expected %zu arguments, got %zu", need, a->argc);
    throw_type(env, fn, what);
    return -1;
  }
  return 0;
}

static int arg_int(args_t *a, size_t i, const char *name, int32_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(a->env, a->argv[i], &t) != napi_ok || t != napi_number ||
      napi_get_value_double(a->env, a->argv[i], &d) != napi_ok) {
    char what[96];
    snprintf(what, sizeof what, "%s must be a number", name);
    throw_type(a->env, a->fn, what);
    return -1;
  }
  if (!(d >= INT32_MIN && d <= INT32_MAX) || d != (double)(int32_t)d) {
    char what[96];
    snprintf(what, sizeof what, "%s must be a 32-bit integer", name);
    throw_range(a->env, a->fn, what);
    return -1;
  }
  *out = (int32_t)d;
  return 0;
}

// An integer in [lo, hi].
static int arg_int_in(args_t *a, size_t i, const char *name, int32_t lo,
                      int32_t hi, int32_t *out) {
  if (arg_int(a, i, name, out) != 0) return -1;
  if (*out < lo || *out > hi) {
    char what[128];
    snprintf(what, sizeof what, "%s = %d is outside [%d, %d]", name, *out, lo, hi);
    throw_range(a->env, a->fn, what);
    return -1;
  }
  return 0;
}

static int arg_fd(args_t *a, size_t i, int *out) {
  return arg_int_in(a, i, "fd", 0, INT32_MAX, out);
}

static int arg_bool(args_t *a, size_t i, const char *name, bool *out) {
  if (napi_get_value_bool(a->env, a->argv[i], out) != napi_ok) {
    char what[96];
    snprintf(what, sizeof what, "%s must be a boolean", name);
    throw_type(a->env, a->fn, what);
    return -1;
  }
  return 0;
}

// A typed array of the given type; *data is NULL only when *len is 0
// (e.g. a detached buffer).
static int arg_typed(args_t *a, size_t i, const char *name,
                     napi_typedarray_type want, const char *want_name,
                     void **data, size_t *len) {
  bool is = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(a->env, a->argv[i], &is) != napi_ok || !is ||
      napi_get_typedarray_info(a->env, a->argv[i], &type, len, data, NULL,
                               NULL) != napi_ok ||
      type != want) {
    char what[96];
    snprintf(what, sizeof what, "%s must be a %s", name, want_name);
    throw_type(a->env, a->fn, what);
    return -1;
  }
  if (*data == NULL) *len = 0;
  return 0;
}

static int arg_u8(args_t *a, size_t i, const char *name, uint8_t **data,
                  size_t *len) {
  return arg_typed(a, i, name, napi_uint8_array, "Uint8Array", (void **)data, len);
}

// An Int32Array with at least `need` elements.
static int arg_i32(args_t *a, size_t i, const char *name, size_t need,
                   int32_t **data) {
  size_t len;
  if (arg_typed(a, i, name, napi_int32_array, "Int32Array", (void **)data, &len) != 0)
    return -1;
  if (len < need) {
    char what[128];
    snprintf(what, sizeof what, "%s has %zu elements, needs %zu", name, len, need);
    throw_range(a->env, a->fn, what);
    return -1;
  }
  return 0;
}

static int arg_u32(args_t *a, size_t i, const char *name, size_t need,
                   uint32_t **data) {
  size_t len;
  if (arg_typed(a, i, name, napi_uint32_array, "Uint32Array", (void **)data, &len) != 0)
    return -1;
  if (len < need) {
    char what[128];
    snprintf(what, sizeof what, "%s has %zu elements, needs %zu", name, len, need);
    throw_range(a->env, a->fn, what);
    return -1;
  }
  return 0;
}

// A string of at most max bytes (UTF-8), copied NUL-terminated into buf,
// which must hold max + 1 bytes. *too_long is set (and 0 returned) when it
// does not fit, so callers decide how to report it.
static int arg_str(args_t *a, size_t i, const char *name, char *buf, size_t max,
                   bool *too_long) {
  size_t len;
  if (napi_get_value_string_utf8(a->env, a->argv[i], NULL, 0, &len) != napi_ok) {
    char what[96];
    snprintf(what, sizeof what, "%s must be a string", name);
    throw_type(a->env, a->fn, what);
    return -1;
  }
  *too_long = len > max;
  if (*too_long) {
    buf[0] = '\0';
    return 0;
  }
  napi_get_value_string_utf8(a->env, a->argv[i], buf, max + 1, &len);
  if (strlen(buf) != len) {  // embedded NUL
    char what[96];
    snprintf(what, sizeof what, "%s must not contain NUL characters", name);
    throw_type(a->env, a->fn, what);
    return -1;
  }
  return 0;
}

// Checks a batch of slots: count slots of slotSize bytes, each with headroom
// bytes reserved in front, fit in a buffer of len bytes.
static int check_slots(args_t *a, size_t len, int32_t slot, int32_t headroom,
                       int32_t count) {
  if (slot <= 0) return throw_range(a->env, a->fn, "slotSize must be > 0"), -1;
  if (headroom < 0 || headroom >= slot)
    return throw_range(a->env, a->fn, "headroom must be in [0, slotSize)"), -1;
  if ((uint64_t)slot * (uint64_t)count > len)
    return throw_range(a->env, a->fn, "maxCount * slotSize exceeds the buffer"), -1;
  return 0;
}

// Checks packets [offsets[i], offsets[i] + sizes[i]) lie in a buffer of len bytes.
static int check_spans(args_t *a, size_t len, const int32_t *offsets,
                       const int32_t *sizes, int32_t count) {
  for (int32_t i = 0; i < count; i++) {
    if (offsets[i] < 0 || sizes[i] < 0 ||
        (uint64_t)offsets[i] + (uint64_t)sizes[i] > len) {
      char what[160];
      snprintf(what, sizeof what,
               "packet %d: offset %d + size %d is outside the buffer (%zu bytes)",
               i, offsets[i], sizes[i], len);
      throw_range(a->env, a->fn, what);
      return -1;
    }
  }
  return 0;
}

static napi_value ret_int(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

static napi_value ret_undefined(napi_env env) {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

static napi_value ret_bool(napi_env env, bool v) {
  napi_value r;
  napi_get_boolean(env, v, &r);
  return r;
}

// ---------------------------------------------------------------------------
// TUN

// tunOpen(name, multiQueue, vnetHdr): fd
// Attaches a queue to the device `name`, creating it if absent. Note that
// IFF_VNET_HDR is a device flag: the last queue opened sets it for all.
static napi_value tun_open(napi_env env, napi_callback_info info) {
  args_t a;
  char name[IFNAMSIZ];
  bool too_long, mq, vnet;
  if (args_init(env, info, "tunOpen", 3, &a) ||
      arg_str(&a, 0, "name", name, IFNAMSIZ - 1, &too_long) ||
      arg_bool(&a, 1, "multiQueue", &mq) || arg_bool(&a, 2, "vnetHdr", &vnet))
    return NULL;
  char ctx[64];
  if (too_long) {
    // The kernel would silently truncate the name; refuse instead.
    return throw_errno(env, EINVAL, "ioctl(TUNSETIFF)", "tun",
                       "interface name longer than 15 bytes");
  }
  snprintf(ctx, sizeof ctx, "tun %s", name);
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open(/dev/net/tun)", ctx, NULL);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (mq ? IFF_MULTI_QUEUE : 0) |
                  (vnet ? IFF_VNET_HDR : 0);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "ioctl(TUNSETIFF)", ctx,
                       err == EINVAL ? "does the device exist with other flags "
                                       "(multi_queue, tap)?"
                                     : NULL);
  }
  return ret_int(env, fd);
}

// tunSetOffload(fd, flags)
static napi_value tun_set_offload(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  int32_t flags;
  if (args_init(env, info, "tunSetOffload", 2, &a) || arg_fd(&a, 0, &fd) ||
      arg_int_in(&a, 1, "flags", 0, INT32_MAX, &flags))
    return NULL;
  if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0)
    return throw_errno(env, errno, "ioctl(TUNSETOFFLOAD)", NULL, NULL);
  return ret_undefined(env);
}

// tunSetVnetHdrSize(fd, size)
static napi_value tun_set_vnet_hdr_size(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  int32_t size;
  if (args_init(env, info, "tunSetVnetHdrSize", 2, &a) || arg_fd(&a, 0, &fd) ||
      arg_int_in(&a, 1, "size", 0, INT32_MAX, &size))
    return NULL;
  int sz = size;
  if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0)
    return throw_errno(env, errno, "ioctl(TUNSETVNETHDRSZ)", NULL, NULL);
  return ret_undefined(env);
}

// tunRead(fd, buf, slotSize, headroom, maxCount, sizes): count
// Packet i goes to buf[i*slotSize + headroom .. (i+1)*slotSize). A TUN read
// into a short buffer silently copies a prefix and returns its length (no
// MSG_TRUNC for read(2)), so a read that fills the whole slot may be a
// truncated packet: it is reported as sizes[i] = -1. Callers size the slot
// (slotSize - headroom) above the largest packet, e.g. MTU + 1.
static napi_value tun_read(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  uint8_t *buf;
  size_t len;
  int32_t slot, headroom, max, *sizes;
  if (args_init(env, info, "tunRead", 6, &a) || arg_fd(&a, 0, &fd) ||
      arg_u8(&a, 1, "buf", &buf, &len) ||
      arg_int(&a, 2, "slotSize", &slot) || arg_int(&a, 3, "headroom", &headroom) ||
      arg_int_in(&a, 4, "maxCount", 0, FAND_MAX_BATCH, &max) ||
      arg_i32(&a, 5, "sizes", (size_t)max, &sizes) ||
      check_slots(&a, len, slot, headroom, max))
    return NULL;
  size_t cap = (size_t)(slot - headroom);
  int32_t n = 0;
  while (n < max) {
    ssize_t r = read(fd, buf + (size_t)n * (size_t)slot + (size_t)headroom, cap);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || n > 0) break;
      return throw_errno(env, errno, "read", "tun", NULL);
    }
    sizes[n++] = (size_t)r >= cap ? -1 : (int32_t)r;
  }
  return ret_int(env, n);
}

// tunWrite(fd, buf, offsets, sizes, count, status): processed
// status[0] += failures, status[1] = last failure's errno.
static napi_value tun_write(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  uint8_t *buf;
  size_t len;
  int32_t count, *offsets, *sizes, *status;
  if (args_init(env, info, "tunWrite", 6, &a) || arg_fd(&a, 0, &fd) ||
      arg_u8(&a, 1, "buf", &buf, &len) ||
      arg_int_in(&a, 4, "count", 0, FAND_MAX_BATCH, &count) ||
      arg_i32(&a, 2, "offsets", (size_t)count, &offsets) ||
      arg_i32(&a, 3, "sizes", (size_t)count, &sizes) ||
      arg_i32(&a, 5, "status", 2, &status) ||
      check_spans(&a, len, offsets, sizes, count))
    return NULL;
  int32_t i = 0;
  while (i < count) {
    ssize_t r = write(fd, buf + offsets[i], (size_t)sizes[i]);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      status[0] += 1;
      status[1] = errno;
    }
    i++;
  }
  return ret_int(env, i);
}

// ---------------------------------------------------------------------------
// Internet checksums (RFC 1071), for the batched send and receive calls: the
// TypeScript packet code decides what is summed and where the result goes;
// the summing itself, a loop over every payload byte, is done here because
// it is the one per-byte cost of the hot path (a JS loop over 16-bit words
// is about ten times slower than 64-bit adds).

// Ones'-complement sum of p[0, n) as 16-bit words in memory order, unfolded.
// The sum commutes with byte order (RFC 1071 §2(B)), so a result folded and
// complemented here can be stored with memcpy as the network-order checksum.
static uint64_t csum_bytes(const uint8_t *p, size_t n) {
  uint64_t sum = 0;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    sum += (w & 0xffffffffu) + (w >> 32);
    p += 8;
    n -= 8;
  }
  while (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    sum += w;
    p += 2;
    n -= 2;
  }
  if (n) {
    uint8_t tail[2] = {p[0], 0};  // an odd last byte is padded with zero
    uint16_t w;
    memcpy(&w, tail, 2);
    sum += w;
  }
  return sum;
}

static uint16_t csum_fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

static uint16_t swap16(uint16_t v) { return (uint16_t)((v << 8) | (v >> 8)); }

// Finishes a CHECKSUM_PARTIAL-style checksum over a message of two spans:
// the sum runs from `start` (in the first span) to the end of the second;
// the field at start + field_off (in the first span) already holds the
// folded pseudo-header sum. UDP (field_off 6) sends a zero sum as 0xffff.
static void csum_complete(uint8_t *start, const uint8_t *end1, const uint8_t *p2,
                          size_t n2, int32_t field_off) {
  size_t n1 = (size_t)(end1 - start);
  uint16_t s = csum_fold(csum_bytes(start, n1));
  uint16_t s2 = csum_fold(csum_bytes(p2, n2));
  // A second span that starts at an odd offset from `start` has its words
  // on the other byte lane.
  uint16_t c = (uint16_t)~csum_fold((uint64_t)s + (n1 & 1 ? swap16(s2) : s2));
  if (c == 0 && field_off == 6) c = 0xffff;
  memcpy(start + field_off, &c, 2);
}

// Checks the inner TCP or UDP checksum of an IPv4-in-IPv4 message p[0, n):
// 1 when right, 2 when wrong, 0 when there is nothing to check (not IPIP, a
// fragment, lengths that disagree, UDP without a checksum, too short).
// Reads only inside p[0, n).
static uint8_t ipip_inner_csum_state(const uint8_t *p, size_t n) {
  if (n < 40 || (p[0] >> 4) != 4 || p[9] != 4) return 0;
  size_t ohl = (size_t)(p[0] & 15) * 4;
  if (ohl < 20 || ohl + 20 > n) return 0;
  const uint8_t *in = p + ohl;
  size_t m = n - ohl;
  size_t ihl = (size_t)(in[0] & 15) * 4;
  if ((in[0] >> 4) != 4 || ihl < 20 || ihl > m) return 0;
  if ((((size_t)in[2] << 8) | in[3]) != m) return 0;
  if (((in[6] << 8 | in[7]) & 0x3fff) != 0) return 0;
  uint8_t proto = in[9];
  size_t l4 = m - ihl;
  if (proto == 6) {
    if (l4 < 20) return 0;
  } else if (proto == 17) {
    if (l4 < 8 || (in[ihl + 6] == 0 && in[ihl + 7] == 0)) return 0;
  } else {
    return 0;
  }
  if (l4 > 0xffff) return 0;
  uint16_t proto_be = htons(proto), len_be = htons((uint16_t)l4);
  uint64_t sum = csum_bytes(in + 12, 8) + proto_be + len_be + csum_bytes(in + ihl, l4);
  return csum_fold(sum) == 0xffff ? 1 : 2;
}

// ---------------------------------------------------------------------------
// Raw IPv4 sockets

static int set_buf(int fd, int force_opt, int opt, int32_t size) {
  int v = size;
  if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof v) == 0) return 0;
  if (errno != EPERM) return -1;
  return setsockopt(fd, SOL_SOCKET, opt, &v, sizeof v);
}

// rawOpen(protocol, rcvbuf, sndbuf, hdrincl): fd
static napi_value raw_open(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t proto, rcv, snd;
  bool hdrincl;
  if (args_init(env, info, "rawOpen", 4, &a) ||
      arg_int_in(&a, 0, "protocol", 0, 255, &proto) ||
      arg_int_in(&a, 1, "rcvbuf", 0, INT32_MAX, &rcv) ||
      arg_int_in(&a, 2, "sndbuf", 0, INT32_MAX, &snd) ||
      arg_bool(&a, 3, "hdrincl", &hdrincl))
    return NULL;
  char ctx[48];
  snprintf(ctx, sizeof ctx, "raw socket (protocol %d)", proto);
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd < 0) return throw_errno(env, errno, "socket(AF_INET, SOCK_RAW)", ctx, NULL);
  const char *fail = NULL;
  if (rcv > 0 && set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcv) < 0)
    fail = "setsockopt(SO_RCVBUF)";
  else if (snd > 0 && set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, snd) < 0)
    fail = "setsockopt(SO_SNDBUF)";
  else if (hdrincl) {
    int one = 1;
    if (setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one) < 0)
      fail = "setsockopt(IP_HDRINCL)";
  }
  if (fail) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, fail, ctx, NULL);
  }
  return ret_int(env, fd);
}

// attachFilter(fd, program): classic BPF, 8-byte struct sock_filter each, host order.
static napi_value attach_filter(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  uint8_t *prog;
  size_t len;
  if (args_init(env, info, "attachFilter", 2, &a) || arg_fd(&a, 0, &fd) ||
      arg_u8(&a, 1, "program", &prog, &len))
    return NULL;
  if (len == 0 || len % sizeof(struct sock_filter) != 0)
    return throw_range(env, "attachFilter",
                       "program length must be a non-zero multiple of 8 bytes");
  if (len / sizeof(struct sock_filter) > BPF_MAXINSNS)
    return throw_range(env, "attachFilter", "program longer than 4096 instructions");
  // The kernel copies the program in (copy_from_user), so the buffer need not
  // be aligned; it is never dereferenced here.
  struct sock_fprog fprog = {
      .len = (unsigned short)(len / sizeof(struct sock_filter)),
      .filter = (struct sock_filter *)(void *)prog,
  };
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog) < 0)
    return throw_errno(env, errno, "setsockopt(SO_ATTACH_FILTER)", NULL, NULL);
  return ret_undefined(env);
}

// rawRecv(fd, buf, slotSize, headroom, maxCount, sizes[, innerCsum]): count
// sizes[i] = -1 when message i did not fit (MSG_TRUNC). With innerCsum (a
// Uint8Array of maxCount), innerCsum[i] = ipip_inner_csum_state() of message
// i: the inbound path then joins TCP segments (GRO) without summing them.
static napi_value raw_recv(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  uint8_t *buf;
  size_t len;
  int32_t slot, headroom, max, *sizes;
  uint8_t *states = NULL;
  size_t states_len = 0;
  if (args_init(env, info, "rawRecv", 6, &a) || arg_fd(&a, 0, &fd) ||
      arg_u8(&a, 1, "buf", &buf, &len) ||
      arg_int(&a, 2, "slotSize", &slot) || arg_int(&a, 3, "headroom", &headroom) ||
      arg_int_in(&a, 4, "maxCount", 0, FAND_MAX_BATCH, &max) ||
      arg_i32(&a, 5, "sizes", (size_t)max, &sizes) ||
      (a.argc > 6 && arg_u8(&a, 6, "innerCsum", &states, &states_len)) ||
      check_slots(&a, len, slot, headroom, max))
    return NULL;
  if (states && states_len < (size_t)max)
    return throw_range(env, "rawRecv", "innerCsum is shorter than maxCount");
  if (max == 0) return ret_int(env, 0);
  struct mmsghdr msgs[FAND_MAX_BATCH];
  struct iovec iov[FAND_MAX_BATCH];
  memset(msgs, 0, sizeof(msgs[0]) * (size_t)max);
  for (int32_t i = 0; i < max; i++) {
    iov[i].iov_base = buf + (size_t)i * (size_t)slot + (size_t)headroom;
    iov[i].iov_len = (size_t)(slot - headroom);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int r;
  do {
    r = recvmmsg(fd, msgs, (unsigned int)max, MSG_DONTWAIT, NULL);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ret_int(env, 0);
    return throw_errno(env, errno, "recvmmsg", NULL, NULL);
  }
  for (int i = 0; i < r; i++) {
    bool trunc = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    sizes[i] = trunc ? -1 : (int32_t)msgs[i].msg_len;
    if (states) states[i] = trunc ? 0 : ipip_inner_csum_state(iov[i].iov_base, msgs[i].msg_len);
  }
  return ret_int(env, r);
}

// sendmmsg over msgs[0, n) on fd. sendmmsg stops at the first failing
// message and, when it sent some before it, returns their count and drops
// the error (net/socket.c, __sys_sendmmsg). The next call then starts at the
// failing message and reports its error, which is how a bad message is
// found and skipped (status[0] += 1, status[1] = errno). Stops at
// EAGAIN/ENOBUFS (a full queue). Returns the messages processed (sent or
// skipped); msg_len of a skipped one stays 0.
static int32_t send_all(int fd, struct mmsghdr *msgs, int32_t n, int32_t *status) {
  int32_t done = 0;
  while (done < n) {
    int r = sendmmsg(fd, msgs + done, (unsigned int)(n - done), MSG_DONTWAIT);
    if (r > 0) {
      done += r;
      continue;
    }
    if (r == 0) break;  // not expected; avoid spinning
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) break;
    status[0] += 1;
    status[1] = errno;
    msgs[done].msg_len = 0;
    done++;
  }
  return done;
}

// rawSend(fd, buf, offsets, sizes, dsts, count, status): processed
// Message i = buf[offsets[i] .. +sizes[i]] (an IPv4 packet, IP_HDRINCL) to
// dsts[i] (host-order uint32). Errors as send_all.
static napi_value raw_send(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  uint8_t *buf;
  size_t len;
  int32_t count, *offsets, *sizes, *status;
  uint32_t *dsts;
  if (args_init(env, info, "rawSend", 7, &a) || arg_fd(&a, 0, &fd) ||
      arg_u8(&a, 1, "buf", &buf, &len) ||
      arg_int_in(&a, 5, "count", 0, FAND_MAX_BATCH, &count) ||
      arg_i32(&a, 2, "offsets", (size_t)count, &offsets) ||
      arg_i32(&a, 3, "sizes", (size_t)count, &sizes) ||
      arg_u32(&a, 4, "dsts", (size_t)count, &dsts) ||
      arg_i32(&a, 6, "status", 2, &status) ||
      check_spans(&a, len, offsets, sizes, count))
    return NULL;
  if (count <= 0) return ret_int(env, 0);
  struct mmsghdr msgs[FAND_MAX_BATCH];
  struct iovec iov[FAND_MAX_BATCH];
  struct sockaddr_in sin[FAND_MAX_BATCH];
  memset(msgs, 0, sizeof(msgs[0]) * (size_t)count);
  memset(sin, 0, sizeof(sin[0]) * (size_t)count);
  for (int32_t i = 0; i < count; i++) {
    iov[i].iov_base = buf + offsets[i];
    iov[i].iov_len = (size_t)sizes[i];
    sin[i].sin_family = AF_INET;
    sin[i].sin_addr.s_addr = htonl(dsts[i]);
    msgs[i].msg_hdr.msg_name = &sin[i];
    msgs[i].msg_hdr.msg_namelen = sizeof sin[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  return ret_int(env, send_all(fd, msgs, count, status));
}

// sendBatch(rawFd, packetFd, buf, offsets, sizes, offsets2, sizes2, dsts,
//           l2, csums, count, status): sent
// The outbound batch of a worker. Message i is buf[offsets[i] .. +sizes[i]]
// followed by buf[offsets2[i] .. +sizes2[i]] (a second iovec, sizes2[i] may
// be 0: a segment's headers built apart from its payload, which stays where
// the TUN read put it), an IPv4 packet.
// - l2[3i] = 0: sent on rawFd (IP_HDRINCL) to dsts[i] (host-order uint32):
//   the kernel routes it and resolves the next hop.
// - l2[3i] = ifindex > 0: sent on packetFd (AF_PACKET, SOCK_DGRAM) out of
//   that interface to the Ethernet address l2[3i+1] (bytes 0-3, big-endian)
//   and l2[3i+2] >> 16 (bytes 4-5): a next hop the kernel has resolved.
// csums[2i] >= 0 has a checksum finished first (csum_complete): the sum
// starts at buf[csums[2i]] (in the first span), the field is csums[2i+1]
// bytes further. Messages go out in batch order. Errors as send_all;
// status[2] += messages left unsent by a full queue (which ends the batch),
// status[3] += bytes sent (whole messages), status[4] += messages sent on
// packetFd. Returns messages sent.
static napi_value send_batch(napi_env env, napi_callback_info info) {
  const char *fn = "sendBatch";
  args_t a;
  int raw_fd, packet_fd;
  uint8_t *buf;
  size_t len;
  int32_t count, *offsets, *sizes, *offsets2, *sizes2, *l2, *csums, *status;
  uint32_t *dsts;
  if (args_init(env, info, fn, 12, &a) || arg_int(&a, 0, "rawFd", &raw_fd) ||
      arg_int(&a, 1, "packetFd", &packet_fd) ||
      arg_u8(&a, 2, "buf", &buf, &len) ||
      arg_int_in(&a, 10, "count", 0, FAND_MAX_BATCH, &count) ||
      arg_i32(&a, 3, "offsets", (size_t)count, &offsets) ||
      arg_i32(&a, 4, "sizes", (size_t)count, &sizes) ||
      arg_i32(&a, 5, "offsets2", (size_t)count, &offsets2) ||
      arg_i32(&a, 6, "sizes2", (size_t)count, &sizes2) ||
      arg_u32(&a, 7, "dsts", (size_t)count, &dsts) ||
      arg_i32(&a, 8, "l2", 3 * (size_t)count, &l2) ||
      arg_i32(&a, 9, "csums", 2 * (size_t)count, &csums) ||
      arg_i32(&a, 11, "status", 5, &status) ||
      check_spans(&a, len, offsets, sizes, count) ||
      check_spans(&a, len, offsets2, sizes2, count))
    return NULL;
  if (count <= 0) return ret_int(env, 0);
  for (int32_t i = 0; i < count; i++) {
    int32_t start = csums[2 * i], field = csums[2 * i + 1];
    if (l2[3 * i] < 0) return throw_range(env, fn, "l2: an ifindex is negative");
    if (l2[3 * i] > 0 && packet_fd < 0)
      return throw_range(env, fn, "l2 names an interface but there is no packet socket");
    if (start < 0) continue;
    if (start < offsets[i] || field < 0 ||
        (int64_t)start + field + 2 > (int64_t)offsets[i] + sizes[i]) {
      char what[160];
      snprintf(what, sizeof what,
               "packet %d: checksum at %d + %d is outside its first span [%d, +%d)",
               i, start, field, offsets[i], sizes[i]);
      return throw_range(env, fn, what);
    }
  }
  for (int32_t i = 0; i < count; i++) {
    if (csums[2 * i] < 0) continue;
    csum_complete(buf + csums[2 * i], buf + offsets[i] + sizes[i], buf + offsets2[i],
                  (size_t)sizes2[i], csums[2 * i + 1]);
  }
  // One message array in batch order; each run of consecutive messages for
  // the same socket goes out in one sendmmsg, runs in order, so a flow whose
  // packets switch path (a STALE neighbour's one kernel-path packet) is not
  // reordered. A full queue ends the batch.
  struct mmsghdr msgs[FAND_MAX_BATCH];
  struct iovec iov[FAND_MAX_BATCH][2];
  union {
    struct sockaddr_in in;
    struct sockaddr_ll ll;
  } addr[FAND_MAX_BATCH];
  memset(msgs, 0, sizeof(msgs[0]) * (size_t)count);
  memset(addr, 0, sizeof(addr[0]) * (size_t)count);
  for (int32_t i = 0; i < count; i++) {
    iov[i][0].iov_base = buf + offsets[i];
    iov[i][0].iov_len = (size_t)sizes[i];
    iov[i][1].iov_base = buf + offsets2[i];
    iov[i][1].iov_len = (size_t)sizes2[i];
    struct msghdr *h = &msgs[i].msg_hdr;
    if (l2[3 * i] == 0) {
      addr[i].in.sin_family = AF_INET;
      addr[i].in.sin_addr.s_addr = htonl(dsts[i]);
      h->msg_namelen = sizeof addr[i].in;
    } else {
      struct sockaddr_ll *d = &addr[i].ll;
      d->sll_family = AF_PACKET;
      d->sll_protocol = htons(ETH_P_IP);
      d->sll_ifindex = l2[3 * i];
      d->sll_halen = 6;
      uint32_t hi = (uint32_t)l2[3 * i + 1], lo = (uint32_t)l2[3 * i + 2];
      const uint8_t mac[6] = {(uint8_t)(hi >> 24), (uint8_t)(hi >> 16), (uint8_t)(hi >> 8),
                              (uint8_t)hi, (uint8_t)(lo >> 24), (uint8_t)(lo >> 16)};
      memcpy(d->sll_addr, mac, 6);
      h->msg_namelen = sizeof *d;
    }
    h->msg_name = &addr[i];
    h->msg_iov = iov[i];
    h->msg_iovlen = sizes2[i] > 0 ? 2 : 1;
  }
  int32_t sent = 0, at = 0;
  while (at < count) {
    bool direct = l2[3 * at] != 0;
    int32_t end = at + 1;
    while (end < count && (l2[3 * end] != 0) == direct) end++;
    int32_t errors = status[0];
    int32_t done = send_all(direct ? packet_fd : raw_fd, msgs + at, end - at, status);
    for (int32_t i = at; i < at + done; i++) status[3] += (int32_t)msgs[i].msg_len;
    int32_t ok = done - (status[0] - errors);
    sent += ok;
    if (direct) status[4] += ok;
    if (done < end - at) {  // a full queue: the rest of the batch is not sent
      status[2] += count - (at + done);
      break;
    }
    at = end;
  }
  return ret_int(env, sent);
}

// packetOpen(sndbuf): fd
// An AF_PACKET SOCK_DGRAM socket for sendBatch: protocol 0, so it receives
// nothing (a packet socket bound to ETH_P_IP would get a copy of every IPv4
// packet of the host); the kernel adds the Ethernet header from sll_addr.
static napi_value packet_open(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t snd;
  if (args_init(env, info, "packetOpen", 1, &a) ||
      arg_int_in(&a, 0, "sndbuf", 0, INT32_MAX, &snd))
    return NULL;
  int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket(AF_PACKET, SOCK_DGRAM)", NULL, NULL);
  if (snd > 0 && set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, snd) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "setsockopt(SO_SNDBUF)", "packet socket", NULL);
  }
  return ret_int(env, fd);
}

// ---------------------------------------------------------------------------
// poll, eventfd, close

// poll(fds, events, revents, n, timeoutMs): ready (0 on timeout or EINTR)
static napi_value do_poll(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t n, timeout, *fds, *events, *revents;
  if (args_init(env, info, "poll", 5, &a) ||
      arg_int_in(&a, 3, "n", 0, FAND_MAX_BATCH, &n) ||
      arg_i32(&a, 0, "fds", (size_t)n, &fds) ||
      arg_i32(&a, 1, "events", (size_t)n, &events) ||
      arg_i32(&a, 2, "revents", (size_t)n, &revents) ||
      arg_int(&a, 4, "timeoutMs", &timeout))
    return NULL;
  struct pollfd p[FAND_MAX_BATCH];
  for (int32_t i = 0; i < n; i++) {
    p[i].fd = fds[i];
    p[i].events = (short)events[i];
    p[i].revents = 0;
  }
  int r = poll(p, (nfds_t)n, timeout < 0 ? -1 : timeout);
  if (r < 0) {
    if (errno == EINTR) r = 0;
    else return throw_errno(env, errno, "poll", NULL, NULL);
  }
  for (int32_t i = 0; i < n; i++) revents[i] = r > 0 ? p[i].revents : 0;
  return ret_int(env, r);
}

static napi_value eventfd_open(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "eventfd", NULL, NULL);
  return ret_int(env, fd);
}

static napi_value eventfd_signal(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (args_init(env, info, "eventfdSignal", 1, &a) || arg_fd(&a, 0, &fd)) return NULL;
  uint64_t one = 1;
  ssize_t r;
  do {
    r = write(fd, &one, sizeof one);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EAGAIN)  // EAGAIN: counter saturated, already signalled
    return throw_errno(env, errno, "write(eventfd)", NULL, NULL);
  return ret_undefined(env);
}

static napi_value eventfd_drain(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (args_init(env, info, "eventfdDrain", 1, &a) || arg_fd(&a, 0, &fd)) return NULL;
  uint64_t v;
  ssize_t r;
  do {
    r = read(fd, &v, sizeof v);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EAGAIN)
    return throw_errno(env, errno, "read(eventfd)", NULL, NULL);
  return ret_undefined(env);
}

static napi_value do_close(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (args_init(env, info, "close", 1, &a) || arg_fd(&a, 0, &fd)) return NULL;
  // On Linux the fd is released even when close fails with EINTR: never retry.
  if (close(fd) < 0 && errno != EINTR)
    return throw_errno(env, errno, "close", NULL, NULL);
  return ret_undefined(env);
}

// ---------------------------------------------------------------------------
// sd_notify

// sdNotify(state, socketPath?): sent
// socketPath overrides $NOTIFY_SOCKET (read with getenv on each call).
// Returns false when neither names a socket. '@' = abstract namespace.
static napi_value sd_notify(napi_env env, napi_callback_info info) {
  args_t a;
  char state[4096];
  bool too_long;
  if (args_init(env, info, "sdNotify", 1, &a) ||
      arg_str(&a, 0, "state", state, sizeof state - 1, &too_long))
    return NULL;
  if (too_long) return throw_range(env, "sdNotify", "state longer than 4095 bytes");
  char pathbuf[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  const char *path = NULL;
  napi_valuetype t = napi_undefined;
  if (a.argc >= 2) napi_typeof(env, a.argv[1], &t);
  if (t != napi_undefined && t != napi_null) {
    bool long_path;
    if (arg_str(&a, 1, "socketPath", pathbuf, sizeof pathbuf - 1, &long_path))
      return NULL;
    if (long_path)
      return throw_errno(env, ENAMETOOLONG, "connect", "sd_notify", "socket path too long");
    path = pathbuf;
  } else {
    path = getenv("NOTIFY_SOCKET");
  }
  if (path == NULL || path[0] == '\0') return ret_bool(env, false);

  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  size_t plen = strlen(path);
  if (path[0] != '/' && path[0] != '@')
    return throw_errno(env, EAFNOSUPPORT, "connect", "sd_notify",
                       "NOTIFY_SOCKET must be an absolute path or @abstract");
  if (plen > sizeof sun.sun_path || (path[0] == '/' && plen == sizeof sun.sun_path))
    return throw_errno(env, ENAMETOOLONG, "connect", "sd_notify", "socket path too long");
  memcpy(sun.sun_path, path, plen);
  socklen_t alen;
  if (path[0] == '@') {
    sun.sun_path[0] = '\0';
    alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
  } else {
    alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket(AF_UNIX)", "sd_notify", NULL);
  ssize_t r;
  do {
    r = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, alen);
  } while (r < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (r < 0) return throw_errno(env, err, "sendto", "sd_notify", NULL);
  return ret_bool(env, true);
}

// ifIndex(name): index, 0 when there is no such interface
static napi_value if_index(napi_env env, napi_callback_info info) {
  args_t a;
  char name[IFNAMSIZ];
  bool too_long;
  if (args_init(env, info, "ifIndex", 1, &a) ||
      arg_str(&a, 0, "name", name, IFNAMSIZ - 1, &too_long))
    return NULL;
  return ret_int(env, too_long ? 0 : (int64_t)if_nametoindex(name));
}

// ---------------------------------------------------------------------------
// rtnetlink (control plane)

// netlinkRequest(msg, timeoutMs): reply
// One request/reply on a fresh NETLINK_ROUTE socket: send msg (a complete
// netlink message, built in TypeScript), wait up to timeoutMs for the first
// reply datagram, return a copy of it, close. The message is not inspected:
// the kernel validates it and answers with NLMSG_ERROR (see parseAck in
// src/dataplane/kernel-fan/netlink.ts). NETLINK_EXT_ACK is turned on when the
// kernel has it, so errors carry the kernel's message.
static napi_value netlink_request(napi_env env, napi_callback_info info) {
  args_t a;
  uint8_t *msg;
  size_t len;
  int32_t timeout;
  if (args_init(env, info, "netlinkRequest", 2, &a) ||
      arg_u8(&a, 0, "msg", &msg, &len) ||
      arg_int_in(&a, 1, "timeoutMs", 0, INT32_MAX, &timeout))
    return NULL;
  if (len < sizeof(struct nlmsghdr) || len > FAND_NETLINK_REPLY_MAX)
    return throw_range(env, "netlinkRequest",
                       "msg must hold 16 to 65536 bytes (one netlink message)");
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0)
    return throw_errno(env, errno, "socket(AF_NETLINK, NETLINK_ROUTE)", "netlink", NULL);
  int one = 1;
  (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);  // best effort

  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;  // nl_pid 0: the kernel
  ssize_t r;
  do {
    r = sendto(fd, msg, len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "sendto", "netlink", NULL);
  }

  struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
  int ready;
  do {
    ready = poll(&p, 1, timeout);  // on EINTR the wait restarts in full
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) {
    int err = ready < 0 ? errno : ETIMEDOUT;
    close(fd);
    return throw_errno(env, err, ready < 0 ? "poll" : "recv", "netlink",
                       ready < 0 ? NULL : "no reply from the kernel in time "
                                          "(was NLM_F_ACK set?)");
  }
  uint8_t *reply = malloc(FAND_NETLINK_REPLY_MAX);
  if (reply == NULL) {
    close(fd);
    return throw_errno(env, ENOMEM, "malloc", "netlink", NULL);
  }
  // MSG_TRUNC: the datagram's real length, to detect a reply that did not fit.
  do {
    r = recv(fd, reply, FAND_NETLINK_REPLY_MAX, MSG_TRUNC);
  } while (r < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (r < 0) {
    free(reply);
    return throw_errno(env, err, "recv", "netlink", NULL);
  }
  if (r > FAND_NETLINK_REPLY_MAX) {
    free(reply);
    return throw_errno(env, EMSGSIZE, "recv", "netlink", "reply larger than 64 KiB");
  }
  napi_value out;
  napi_status st = napi_create_buffer_copy(env, (size_t)r, reply, NULL, &out);
  free(reply);
  if (st != napi_ok) return throw_errno(env, ENOMEM, "napi_create_buffer_copy", "netlink", NULL);
  return out;
}

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
