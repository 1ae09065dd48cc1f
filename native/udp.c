// UDP sockets for the VXLAN dataplane: open (SO_REUSEPORT, IP_RECVTOS),
// the offload probes, batched send with UDP segmentation offload and
// per-message TOS, batched receive with UDP GRO, and batched writev to a TAP.
//
// Kernel facts relied on (include/uapi/linux/udp.h, net/ipv4/udp.c,
// net/ipv4/udp_offload.c):
// - UDP_SEGMENT (Linux 4.18): a sendmsg whose payload is several segments of
//   gso_size bytes (the last may be shorter) leaves as that many datagrams,
//   each with its own IPv4 and UDP header, built and checksummed by the
//   kernel (or the NIC). At most UDP_MAX_SEGMENTS (64) segments a send, and
//   the payload at most 0xffff - 8 - 20 bytes (the IPv4 total-length field of
//   the unsegmented packet, __ip_append_data). A cmsg sets it per message.
// - UDP_GRO (Linux 5.0): the socket accepts coalesced datagrams; each comes
//   with a SOL_UDP/UDP_GRO cmsg holding the segment size. Without the option
//   the kernel segments them again before delivery (udp_unexpected_gso()).
//   GRO only merges datagrams with a non-zero UDP checksum, which it checked.
// - getsockopt(UDP_GRO) (Linux 5.12) reads the option back.
// - IP_RECVTOS: an IP_TOS cmsg (one byte) with each datagram: the outer ECN
//   field, for RFC 6040 decapsulation.

#include "common.h"
#include "csum.h"

#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/uio.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

// Spans (iovecs) per udpSendBatch / tunWriteV call: a 64 KiB super-packet
// cut into 64 segments is 128 spans; 4096 keeps the stack use of a call
// (iovec + checks) near 80 KiB.
#define FAND_MAX_SPANS 4096
// Per-message control buffer: UDP_SEGMENT (u16) and IP_TOS (int) to send;
// UDP_GRO (int) and IP_TOS (u8) received.
// Fields per message of udpSendBatch: first span, span count, gso size, TOS, result.
#define MSG_STRIDE 5
#define FAND_CMSG_SPACE (CMSG_SPACE(sizeof(int)) * 2 + CMSG_SPACE(sizeof(uint16_t)))

// udpOpen(bindAddr, port, reusePort, rcvbuf, sndbuf): fd
// bindAddr is a host-order IPv4 address (0: any); port 0 picks one. The
// socket sends without DF (IP_PMTUDISC_DONT), as Linux's vxlan devices do by
// default (`df unset`): an outer packet a router cannot forward whole is
// fragmented there, not dropped. It reports the outer TOS (IP_RECVTOS).
napi_value udp_open(napi_env env, napi_callback_info info) {
  args_t a;
  double addr_d;
  int32_t port, rcv, snd;
  bool reuse;
  if (args_init(env, info, "udpOpen", 5, &a)) return NULL;
  if (napi_get_value_double(env, a.argv[0], &addr_d) != napi_ok || !(addr_d >= 0 && addr_d <= 4294967295.0) ||
      addr_d != (double)(uint32_t)addr_d)
    return throw_range(env, "udpOpen", "bindAddr must be a uint32 IPv4 address");
  if (arg_int_in(&a, 1, "port", 0, 65535, &port) || arg_bool(&a, 2, "reusePort", &reuse) ||
      arg_int_in(&a, 3, "rcvbuf", 0, INT32_MAX, &rcv) || arg_int_in(&a, 4, "sndbuf", 0, INT32_MAX, &snd))
    return NULL;
  uint32_t bind_addr = (uint32_t)addr_d;
  char ctx[64];
  snprintf(ctx, sizeof ctx, "udp socket %u.%u.%u.%u:%d", bind_addr >> 24, (bind_addr >> 16) & 255,
           (bind_addr >> 8) & 255, bind_addr & 255, port);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket(AF_INET, SOCK_DGRAM)", ctx, NULL);
  int one = 1, dont = IP_PMTUDISC_DONT;
  const char *fail = NULL;
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    fail = "setsockopt(SO_REUSEPORT)";
  else if (rcv > 0 && set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcv) < 0)
    fail = "setsockopt(SO_RCVBUF)";
  else if (snd > 0 && set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, snd) < 0)
    fail = "setsockopt(SO_SNDBUF)";
  else if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &dont, sizeof dont) < 0)
    fail = "setsockopt(IP_MTU_DISCOVER)";
  else if (setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &one, sizeof one) < 0)
    fail = "setsockopt(IP_RECVTOS)";
  if (!fail) {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(bind_addr);
    sin.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) fail = "bind";
  }
  if (fail) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, fail, ctx,
                       err == EADDRINUSE ? "another socket holds this port without SO_REUSEPORT "
                                           "(a kernel vxlan device on the same port?)"
                                         : NULL);
  }
  return ret_int(env, fd);
}

// udpLocalPort(fd): the port the socket is bound to.
napi_value udp_local_port(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (args_init(env, info, "udpLocalPort", 1, &a) || arg_fd(&a, 0, &fd)) return NULL;
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  if (getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
    return throw_errno(env, errno, "getsockname", NULL, NULL);
  return ret_int(env, ntohs(sin.sin_port));
}

// udpAttachReuseport(fd, program): SO_ATTACH_REUSEPORT_CBPF (Linux 4.5) with a
// classic BPF program (8-byte struct sock_filter each, host order) that
// returns the index of the socket in the SO_REUSEPORT group to deliver to.
#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif
napi_value udp_attach_reuseport(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  uint8_t *prog;
  size_t len;
  if (args_init(env, info, "udpAttachReuseport", 2, &a) || arg_fd(&a, 0, &fd) || arg_u8(&a, 1, "program", &prog, &len))
    return NULL;
  if (len == 0 || len % sizeof(struct sock_filter) != 0 || len / sizeof(struct sock_filter) > BPF_MAXINSNS)
    return throw_range(env, "udpAttachReuseport", "program length must be a non-zero multiple of 8 bytes, at most 4096 instructions");
  struct sock_fprog fprog = {.len = (unsigned short)(len / sizeof(struct sock_filter)), .filter = (struct sock_filter *)(void *)prog};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog, sizeof fprog) < 0)
    return throw_errno(env, errno, "setsockopt(SO_ATTACH_REUSEPORT_CBPF)", NULL, NULL);
  return ret_undefined(env);
}

// udpSetGro(fd, on): setsockopt(UDP_GRO). Throws ENOPROTOOPT before Linux 5.0.
napi_value udp_set_gro(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  bool on;
  if (args_init(env, info, "udpSetGro", 2, &a) || arg_fd(&a, 0, &fd) || arg_bool(&a, 1, "on", &on))
    return NULL;
  int v = on ? 1 : 0;
  if (setsockopt(fd, SOL_UDP, UDP_GRO, &v, sizeof v) < 0)
    return throw_errno(env, errno, "setsockopt(UDP_GRO)", NULL, NULL);
  return ret_undefined(env);
}

// udpGetGro(fd): getsockopt(UDP_GRO) as a boolean. Throws ENOPROTOOPT before Linux 5.12.
napi_value udp_get_gro(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (args_init(env, info, "udpGetGro", 1, &a) || arg_fd(&a, 0, &fd)) return NULL;
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(fd, SOL_UDP, UDP_GRO, &v, &len) < 0)
    return throw_errno(env, errno, "getsockopt(UDP_GRO)", NULL, NULL);
  return ret_bool(env, v != 0);
}

// udpProbe(): { gso, gro, groGet } each 0 when the kernel has it, else the
// errno of the attempt: setsockopt(UDP_SEGMENT) (4.18), setsockopt(UDP_GRO)
// (5.0), getsockopt(UDP_GRO) (5.12), on a throw-away socket.
napi_value udp_probe(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket(AF_INET, SOCK_DGRAM)", "udp probe", NULL);
  int seg = 1400, one = 1, v = 0;
  socklen_t len = sizeof v;
  int gso = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof seg) < 0 ? errno : 0;
  int gro = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) < 0 ? errno : 0;
  int get = getsockopt(fd, SOL_UDP, UDP_GRO, &v, &len) < 0 ? errno : (v ? 0 : EINVAL);
  close(fd);
  napi_value o;
  if (napi_create_object(env, &o) != napi_ok) return NULL;
  napi_set_named_property(env, o, "gso", ret_int(env, gso));
  napi_set_named_property(env, o, "gro", ret_int(env, gro));
  napi_set_named_property(env, o, "groGet", ret_int(env, get));
  return o;
}

// Checks spans[2k], spans[2k+1] (offset, length) for k < n lie in buf.
static int check_span_pairs(args_t *a, size_t len, const int32_t *spans, int32_t n) {
  for (int32_t k = 0; k < n; k++) {
    int32_t off = spans[2 * k], l = spans[2 * k + 1];
    if (off < 0 || l < 0 || (uint64_t)off + (uint64_t)l > len) {
      char what[128];
      snprintf(what, sizeof what, "span %d: offset %d + length %d is outside the buffer (%zu bytes)", k, off, l, len);
      throw_range(a->env, a->fn, what);
      return -1;
    }
  }
  return 0;
}

// Checks msgs[4i] (first span), msgs[4i+1] (span count) for i < count
// describe runs inside [0, nspans), and returns their total in *used.
static int check_runs(args_t *a, const int32_t *msgs, int32_t stride, int32_t count, int32_t nspans) {
  for (int32_t i = 0; i < count; i++) {
    int32_t first = msgs[stride * i], n = msgs[stride * i + 1];
    if (first < 0 || n < 1 || (int64_t)first + n > nspans) {
      char what[128];
      snprintf(what, sizeof what, "message %d: spans [%d, +%d) are outside the %d spans given", i, first, n, nspans);
      throw_range(a->env, a->fn, what);
      return -1;
    }
  }
  return 0;
}

// udpSendBatch(fd, buf, spans, nspans, msgs, dsts, port, csums, ncsums, count, status): sent
// Message i is the concatenation of spans msgs[5i] .. msgs[5i] + msgs[5i+1] - 1
// (spans[2k] = offset in buf, spans[2k+1] = length), sent to dsts[i]
// (host-order IPv4) on UDP port `port`. msgs[5i+2] > 0 is its UDP_SEGMENT
// size (the kernel cuts the payload into datagrams of that size, the last
// shorter); msgs[5i+3] its outer TOS (IP_TOS cmsg); msgs[5i+4] is set to
// what became of it: 1 sent, -1 refused, 0 not attempted (a full queue). First, each checksum task
// k < ncsums (csums[4k..4k+3] = span, start, field offset, span count) is
// finished as a CHECKSUM_PARTIAL packet's: the ones'-complement sum from
// buf[start] to the end of the span and over the next count - 1 spans
// (at most 2 in all), complemented into the field at start + field offset
// (inside the first span), which holds the pseudo-header sum.
// Messages go out in order in one sendmmsg; a message the kernel refuses is
// skipped (status[0] += 1, status[1] = errno); a full queue (EAGAIN/ENOBUFS)
// ends the batch (status[2] += messages left); status[3] += bytes sent.
napi_value udp_send_batch(napi_env env, napi_callback_info info) {
  const char *fn = "udpSendBatch";
  args_t a;
  int fd;
  uint8_t *buf;
  size_t len;
  int32_t nspans, count, port, ncsums, *spans, *msgs, *csums, *status;
  uint32_t *dsts;
  if (args_init(env, info, fn, 11, &a) || arg_fd(&a, 0, &fd) || arg_u8(&a, 1, "buf", &buf, &len) ||
      arg_int_in(&a, 3, "nspans", 0, FAND_MAX_SPANS, &nspans) ||
      arg_int_in(&a, 9, "count", 0, FAND_MAX_BATCH, &count) ||
      arg_int_in(&a, 6, "port", 1, 65535, &port) ||
      arg_int_in(&a, 8, "ncsums", 0, FAND_MAX_SPANS, &ncsums) ||
      arg_i32(&a, 2, "spans", 2 * (size_t)nspans, &spans) ||
      arg_i32(&a, 4, "msgs", MSG_STRIDE * (size_t)count, &msgs) ||
      arg_u32(&a, 5, "dsts", (size_t)count, &dsts) ||
      arg_i32(&a, 7, "csums", 4 * (size_t)ncsums, &csums) ||
      arg_i32(&a, 10, "status", 4, &status) ||
      check_span_pairs(&a, len, spans, nspans) || check_runs(&a, msgs, MSG_STRIDE, count, nspans))
    return NULL;
  for (int32_t k = 0; k < ncsums; k++) {
    int32_t s = csums[4 * k], start = csums[4 * k + 1], field = csums[4 * k + 2], n = csums[4 * k + 3];
    if (s < 0 || s >= nspans || n < 1 || n > 2 || s + n > nspans || start < spans[2 * s] || field < 0 ||
        (int64_t)start + field + 2 > (int64_t)spans[2 * s] + spans[2 * s + 1]) {
      char what[160];
      snprintf(what, sizeof what, "checksum %d: span %d (+%d), start %d, field +%d do not fit the spans", k, s, n, start, field);
      return throw_range(env, fn, what);
    }
  }
  for (int32_t i = 0; i < count; i++) {
    int32_t *mi = msgs + MSG_STRIDE * i;
    if (mi[2] < 0 || mi[2] > 0xffff || mi[3] < 0 || mi[3] > 255)
      return throw_range(env, fn, "a message's gso size or TOS is out of range");
    mi[4] = 0;
  }
  for (int32_t k = 0; k < ncsums; k++) {
    int32_t s = csums[4 * k], n = csums[4 * k + 3];
    uint8_t *p2 = n > 1 ? buf + spans[2 * (s + 1)] : buf;
    size_t n2 = n > 1 ? (size_t)spans[2 * (s + 1) + 1] : 0;
    csum_complete(buf + csums[4 * k + 1], buf + spans[2 * s] + spans[2 * s + 1], p2, n2, csums[4 * k + 2]);
  }
  if (count == 0) return ret_int(env, 0);
  struct iovec iov[FAND_MAX_SPANS];
  for (int32_t k = 0; k < nspans; k++) {
    iov[k].iov_base = buf + spans[2 * k];
    iov[k].iov_len = (size_t)spans[2 * k + 1];
  }
  struct mmsghdr m[FAND_MAX_BATCH];
  struct sockaddr_in sin[FAND_MAX_BATCH];
  union { char buf[FAND_CMSG_SPACE]; struct cmsghdr align; } ctl[FAND_MAX_BATCH];
  memset(m, 0, sizeof(m[0]) * (size_t)count);
  for (int32_t i = 0; i < count; i++) {
    memset(&sin[i], 0, sizeof sin[i]);
    sin[i].sin_family = AF_INET;
    sin[i].sin_addr.s_addr = htonl(dsts[i]);
    sin[i].sin_port = htons((uint16_t)port);
    struct msghdr *h = &m[i].msg_hdr;
    h->msg_name = &sin[i];
    h->msg_namelen = sizeof sin[i];
    int32_t *mi = msgs + MSG_STRIDE * i;
    h->msg_iov = &iov[mi[0]];
    h->msg_iovlen = (size_t)mi[1];
    h->msg_control = ctl[i].buf;
    h->msg_controllen = sizeof ctl[i].buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(h);
    size_t used = 0;
    if (mi[2] > 0) {
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t g = (uint16_t)mi[2];
      memcpy(CMSG_DATA(c), &g, sizeof g);
      used += CMSG_SPACE(sizeof(uint16_t));
      c = CMSG_NXTHDR(h, c);
    }
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_TOS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    int tos = mi[3];
    memcpy(CMSG_DATA(c), &tos, sizeof tos);
    used += CMSG_SPACE(sizeof(int));
    h->msg_controllen = used;
  }
  int32_t errors = status[0];
  int32_t done = send_all(fd, m, count, status);
  for (int32_t i = 0; i < done; i++) {
    status[3] += (int32_t)m[i].msg_len;
    msgs[MSG_STRIDE * i + 4] = m[i].msg_len > 0 ? 1 : -1;  // send_all leaves a refused message's msg_len 0
  }
  if (done < count) status[2] += count - done;
  return ret_int(env, done - (status[0] - errors));
}

static uint8_t vxlan_inner_csum_state(const uint8_t *p, size_t n);

// udpRecvBatch(fd, buf, slotSize, headroom, maxCount, sizes, srcs, gso, tos[, innerCsum]): count
// recvmmsg up to maxCount datagrams; datagram i lands at
// buf[i*slotSize + headroom ..). sizes[i] = its length (-1 when cut off:
// MSG_TRUNC), srcs[i] its source address (host order), gso[i] the segment
// size of a GRO'd datagram (UDP_GRO cmsg) or 0, tos[i] the outer TOS
// (IP_TOS cmsg) or -1. With innerCsum (maxCount bytes), innerCsum[i] =
// vxlan_inner_csum_state() of a datagram that is not a GRO'd one, checked
// while the batch is in cache (0 for GRO'd ones: GRO merged only datagrams
// whose UDP checksum, which covers the inner frame, it had verified).
// Returns the count, 0 when none is queued.
napi_value udp_recv_batch(napi_env env, napi_callback_info info) {
  const char *fn = "udpRecvBatch";
  args_t a;
  int fd;
  uint8_t *buf;
  size_t len;
  int32_t slot, headroom, max, *sizes, *gso, *tos;
  uint32_t *srcs;
  uint8_t *states = NULL;
  size_t states_len = 0;
  if (args_init(env, info, fn, 9, &a) || arg_fd(&a, 0, &fd) || arg_u8(&a, 1, "buf", &buf, &len) ||
      arg_int(&a, 2, "slotSize", &slot) || arg_int(&a, 3, "headroom", &headroom) ||
      arg_int_in(&a, 4, "maxCount", 0, FAND_MAX_BATCH, &max) ||
      arg_i32(&a, 5, "sizes", (size_t)max, &sizes) || arg_u32(&a, 6, "srcs", (size_t)max, &srcs) ||
      arg_i32(&a, 7, "gso", (size_t)max, &gso) || arg_i32(&a, 8, "tos", (size_t)max, &tos) ||
      (a.argc > 9 && arg_u8(&a, 9, "innerCsum", &states, &states_len)) ||
      check_slots(&a, len, slot, headroom, max))
    return NULL;
  if (states && states_len < (size_t)max) return throw_range(env, fn, "innerCsum is shorter than maxCount");
  if (max == 0) return ret_int(env, 0);
  struct mmsghdr m[FAND_MAX_BATCH];
  struct iovec iov[FAND_MAX_BATCH];
  struct sockaddr_in sin[FAND_MAX_BATCH];
  union { char buf[FAND_CMSG_SPACE]; struct cmsghdr align; } ctl[FAND_MAX_BATCH];
  memset(m, 0, sizeof(m[0]) * (size_t)max);
  for (int32_t i = 0; i < max; i++) {
    iov[i].iov_base = buf + (size_t)i * (size_t)slot + (size_t)headroom;
    iov[i].iov_len = (size_t)(slot - headroom);
    m[i].msg_hdr.msg_iov = &iov[i];
    m[i].msg_hdr.msg_iovlen = 1;
    m[i].msg_hdr.msg_name = &sin[i];
    m[i].msg_hdr.msg_namelen = sizeof sin[i];
    m[i].msg_hdr.msg_control = ctl[i].buf;
    m[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
  }
  int r;
  do {
    r = recvmmsg(fd, m, (unsigned int)max, MSG_DONTWAIT, NULL);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ret_int(env, 0);
    return throw_errno(env, errno, "recvmmsg", "udp", NULL);
  }
  for (int i = 0; i < r; i++) {
    struct msghdr *h = &m[i].msg_hdr;
    sizes[i] = (h->msg_flags & MSG_TRUNC) ? -1 : (int32_t)m[i].msg_len;
    srcs[i] = h->msg_namelen >= sizeof(struct sockaddr_in) ? ntohl(sin[i].sin_addr.s_addr) : 0;
    gso[i] = 0;
    tos[i] = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
        int g;
        memcpy(&g, CMSG_DATA(c), sizeof g);
        gso[i] = g;
      } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS && c->cmsg_len >= CMSG_LEN(1)) {
        tos[i] = *(uint8_t *)CMSG_DATA(c);
      }
    }
    if (states) states[i] = (gso[i] == 0 && sizes[i] > 0) ? vxlan_inner_csum_state(iov[i].iov_base, m[i].msg_len) : 0;
  }
  return ret_int(env, r);
}

// tunWriteV(fd, buf, spans, nspans, pkts, count, status): processed
// Packet i is written with one writev of spans pkts[2i] .. pkts[2i] +
// pkts[2i+1] - 1 (spans[2k] = offset, spans[2k+1] = length): a virtio-net
// header, headers and payload pieces need not be contiguous. Stops at
// EAGAIN; a packet failing otherwise is skipped (status[0] += 1, status[1] =
// errno). Returns the packets processed (written + failed).
napi_value tun_write_v(napi_env env, napi_callback_info info) {
  const char *fn = "tunWriteV";
  args_t a;
  int fd;
  uint8_t *buf;
  size_t len;
  int32_t nspans, count, *spans, *pkts, *status;
  if (args_init(env, info, fn, 7, &a) || arg_fd(&a, 0, &fd) || arg_u8(&a, 1, "buf", &buf, &len) ||
      arg_int_in(&a, 3, "nspans", 0, FAND_MAX_SPANS, &nspans) ||
      arg_int_in(&a, 5, "count", 0, FAND_MAX_BATCH, &count) ||
      arg_i32(&a, 2, "spans", 2 * (size_t)nspans, &spans) || arg_i32(&a, 4, "pkts", 2 * (size_t)count, &pkts) ||
      arg_i32(&a, 6, "status", 2, &status) ||
      check_span_pairs(&a, len, spans, nspans) || check_runs(&a, pkts, 2, count, nspans))
    return NULL;
  for (int32_t k = 0; k < count; k++) {
    if (pkts[2 * k + 1] > UIO_MAXIOV) return throw_range(env, fn, "a packet has more spans than writev takes (1024)");
  }
  struct iovec iov[FAND_MAX_SPANS];
  for (int32_t k = 0; k < nspans; k++) {
    iov[k].iov_base = buf + spans[2 * k];
    iov[k].iov_len = (size_t)spans[2 * k + 1];
  }
  int32_t i = 0;
  while (i < count) {
    ssize_t r = writev(fd, &iov[pkts[2 * i]], pkts[2 * i + 1]);
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

// Checks the inner TCP or UDP checksum of a VXLAN datagram p[0, n) (VXLAN
// header, Ethernet, IPv4): 1 right, 2 wrong, 0 nothing to check (not IPv4
// behind the Ethernet header, a fragment, lengths that disagree, UDP without
// a checksum). Reads only inside p[0, n).
static uint8_t vxlan_inner_csum_state(const uint8_t *p, size_t n) {
  if (n < 8 + 14 + 20 || p[8 + 12] != 0x08 || p[8 + 13] != 0x00) return 0;
  const uint8_t *in = p + 8 + 14;
  size_t m = n - 8 - 14;
  size_t ihl = (size_t)(in[0] & 15) * 4;
  if ((in[0] >> 4) != 4 || ihl < 20 || ihl > m) return 0;
  size_t total = ((size_t)in[2] << 8) | in[3];
  if (total < ihl || total > m) return 0;
  if (((in[6] << 8 | in[7]) & 0x3fff) != 0) return 0;
  return ipv4_l4_csum_state(in, ihl, total - ihl);
}
