// rtnetlink requests and interface indexes (control plane).

#include "common.h"

// ---------------------------------------------------------------------------
// rtnetlink (control plane) and interface indexes

// ifIndex(name): index, 0 when there is no such interface
napi_value if_index(napi_env env, napi_callback_info info) {
  args_t a;
  char name[IFNAMSIZ];
  bool too_long;
  if (args_init(env, info, "ifIndex", 1, &a) ||
      arg_str(&a, 0, "name", name, IFNAMSIZ - 1, &too_long))
    return NULL;
  return ret_int(env, too_long ? 0 : (int64_t)if_nametoindex(name));
}

// netlinkRequest(msg, timeoutMs): reply
// One request/reply on a fresh NETLINK_ROUTE socket: send msg (a complete
// netlink message, built in TypeScript), wait up to timeoutMs for the first
// reply datagram, return a copy of it, close. The message is not inspected:
// the kernel validates it and answers with NLMSG_ERROR (see parseAck in
// src/dataplane/kernel-fan/netlink.ts). NETLINK_EXT_ACK is turned on when the
// kernel has it, so errors carry the kernel's message.
napi_value netlink_request(napi_env env, napi_callback_info info) {
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
