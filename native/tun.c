// TUN queues: open (multi-queue, vnet header), offloads, batched read and write.

#include "common.h"

// ---------------------------------------------------------------------------
// TUN

// Attaches a queue of the TUN (IFF_TUN) or TAP (IFF_TAP) device `name`,
// creating it if absent. Note that IFF_VNET_HDR is a device flag: the last
// queue opened sets it for all.
static napi_value open_queue(napi_env env, napi_callback_info info, const char *fn, int kind) {
  args_t a;
  char name[IFNAMSIZ];
  bool too_long, mq, vnet;
  if (args_init(env, info, fn, 3, &a) ||
      arg_str(&a, 0, "name", name, IFNAMSIZ - 1, &too_long) ||
      arg_bool(&a, 1, "multiQueue", &mq) || arg_bool(&a, 2, "vnetHdr", &vnet))
    return NULL;
  const char *what = kind == IFF_TAP ? "tap" : "tun";
  char ctx[64];
  if (too_long) {
    // The kernel would silently truncate the name; refuse instead.
    return throw_errno(env, EINVAL, "ioctl(TUNSETIFF)", what,
                       "interface name longer than 15 bytes");
  }
  snprintf(ctx, sizeof ctx, "%s %s", what, name);
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open(/dev/net/tun)", ctx, NULL);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name));
  ifr.ifr_flags = (short)(kind | IFF_NO_PI | (mq ? IFF_MULTI_QUEUE : 0) |
                          (vnet ? IFF_VNET_HDR : 0));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "ioctl(TUNSETIFF)", ctx,
                       err == EINVAL ? "does the device exist with other flags "
                                       "(multi_queue, tun or tap)?"
                                     : NULL);
  }
  return ret_int(env, fd);
}

// tunOpen(name, multiQueue, vnetHdr): fd
napi_value tun_open(napi_env env, napi_callback_info info) {
  return open_queue(env, info, "tunOpen", IFF_TUN);
}

// tapOpen(name, multiQueue, vnetHdr): fd. Reads and writes carry Ethernet frames.
napi_value tap_open(napi_env env, napi_callback_info info) {
  return open_queue(env, info, "tapOpen", IFF_TAP);
}

// tunSetOffload(fd, flags)
napi_value tun_set_offload(napi_env env, napi_callback_info info) {
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
napi_value tun_set_vnet_hdr_size(napi_env env, napi_callback_info info) {
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
napi_value tun_read(napi_env env, napi_callback_info info) {
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
napi_value tun_write(napi_env env, napi_callback_info info) {
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
