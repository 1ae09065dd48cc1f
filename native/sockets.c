// Raw IPv4 and AF_PACKET sockets: open, classic BPF filter, batched receive
// (recvmmsg) and send (sendmmsg), with checksums finished in the batch.

#include "common.h"
#include "csum.h"

// ---------------------------------------------------------------------------
// Raw IPv4 sockets

int set_buf(int fd, int force_opt, int opt, int32_t size) {
  int v = size;
  if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof v) == 0) return 0;
  if (errno != EPERM) return -1;
  return setsockopt(fd, SOL_SOCKET, opt, &v, sizeof v);
}

// rawOpen(protocol, rcvbuf, sndbuf, hdrincl): fd
napi_value raw_open(napi_env env, napi_callback_info info) {
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
napi_value attach_filter(napi_env env, napi_callback_info info) {
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
napi_value raw_recv(napi_env env, napi_callback_info info) {
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
int32_t send_all(int fd, struct mmsghdr *msgs, int32_t n, int32_t *status) {
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
napi_value raw_send(napi_env env, napi_callback_info info) {
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
napi_value send_batch(napi_env env, napi_callback_info info) {
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
napi_value packet_open(napi_env env, napi_callback_info info) {
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
