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

// ---------------------------------------------------------------------------
// Long-lived rtnetlink sockets: dumps with multi-part replies, multicast
// groups, and readiness from Node's own event loop.
//
// Why uv_poll on the loop of the calling thread rather than a worker thread
// blocked in recv(): an idle daemon must cost nothing. uv_poll adds the fd to
// the epoll set libuv already waits in, so no thread wakes until the kernel
// queues a message; the JavaScript side then drains the socket with
// netlinkRecv (non-blocking). A worker thread would add a thread, a copy of
// every message across threads and a second event loop for the same result.

#include <sched.h>
#include <uv.h>

// netlinkOpen(protocol, groups, rcvbuf, netnsPath): fd
// socket(AF_NETLINK, SOCK_RAW, protocol), non-blocking, close-on-exec, bound
// (the kernel picks the port id), joined to each multicast group in `groups`
// (NETLINK_ADD_MEMBERSHIP: group numbers, not bit masks, so groups above 32
// such as RTNLGRP_NEXTHOP work too). rcvbuf > 0 is forced (SO_RCVBUFFORCE as
// root): an event socket whose queue overflows loses messages (ENOBUFS). With
// netnsPath (e.g. /run/netns/NAME), the socket is created in that network
// namespace: a netlink socket belongs to the namespace it was created in
// (sock_net), whatever the thread does afterwards. The calling thread enters
// the namespace for the socket() call only and returns at once.
napi_value netlink_open(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t proto, rcv;
  uint32_t *groups;
  size_t ngroups = 0;
  if (args_init(env, info, "netlinkOpen", 3, &a) ||
      arg_int_in(&a, 0, "protocol", 0, 31, &proto) ||
      arg_typed(&a, 1, "groups", napi_uint32_array, "Uint32Array", (void **)&groups, &ngroups) ||
      arg_int_in(&a, 2, "rcvbuf", 0, INT32_MAX, &rcv))
    return NULL;
  char ns[PATH_MAX];
  bool too_long = false, in_ns = false;
  napi_valuetype t = napi_undefined;
  if (a.argc >= 4) napi_typeof(env, a.argv[3], &t);
  if (t != napi_undefined && t != napi_null) {
    if (arg_str(&a, 3, "netnsPath", ns, sizeof ns - 1, &too_long)) return NULL;
    if (too_long) return throw_range(env, "netlinkOpen", "netnsPath is too long");
    in_ns = true;
  }
  int home = -1, target = -1;
  if (in_ns) {
    home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) return throw_errno(env, errno, "open(/proc/thread-self/ns/net)", "netlink", NULL);
    target = open(ns, O_RDONLY | O_CLOEXEC);
    if (target < 0) {
      int err = errno;
      close(home);
      return throw_errno(env, err, "open", "netlink", ns);
    }
    if (setns(target, CLONE_NEWNET) < 0) {
      int err = errno;
      close(home);
      close(target);
      return throw_errno(env, err, "setns", "netlink", ns);
    }
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  int sock_err = errno;
  if (in_ns) {
    // Staying in the other namespace would move every later socket of this
    // thread there: not recoverable, so not survivable either.
    if (setns(home, CLONE_NEWNET) < 0) napi_fatal_error("netlinkOpen", NAPI_AUTO_LENGTH, "cannot return to the original network namespace", NAPI_AUTO_LENGTH);
    close(home);
    close(target);
  }
  if (fd < 0) return throw_errno(env, sock_err, "socket(AF_NETLINK)", "netlink", NULL);
  const char *fail = NULL;
  int one = 1;
  (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);  // best effort
  struct sockaddr_nl local;
  memset(&local, 0, sizeof local);
  local.nl_family = AF_NETLINK;
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) fail = "bind";
  for (size_t i = 0; !fail && i < ngroups; i++) {
    int g = (int)groups[i];
    if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g) < 0) fail = "setsockopt(NETLINK_ADD_MEMBERSHIP)";
  }
  if (!fail && rcv > 0 && set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcv) < 0) fail = "setsockopt(SO_RCVBUF)";
  if (fail) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, fail, "netlink", NULL);
  }
  return ret_int(env, fd);
}

// netlinkJoin(fd, group): joins one more multicast group (NETLINK_ADD_MEMBERSHIP).
napi_value netlink_join(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  int32_t g;
  if (args_init(env, info, "netlinkJoin", 2, &a) || arg_fd(&a, 0, &fd) ||
      arg_int_in(&a, 1, "group", 1, INT32_MAX, &g))
    return NULL;
  int group = g;
  if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0)
    return throw_errno(env, errno, "setsockopt(NETLINK_ADD_MEMBERSHIP)", "netlink", NULL);
  return ret_undefined(env);
}

// strerror(errno): the C library's words for an errno, as iproute2 prints
// them after "RTNETLINK answers: " (teardown recognises some of them).
napi_value str_error(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t err;
  if (args_init(env, info, "strerror", 1, &a) || arg_int_in(&a, 0, "errno", 0, 4095, &err)) return NULL;
  char buf[256];
  const char *text = strerror_r(err, buf, sizeof buf);  // GNU: returns the text
  napi_value out;
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &out) != napi_ok) return NULL;
  return out;
}

// netlinkPortId(fd): the port id the kernel gave the socket (nl_pid of
// getsockname): replies to its requests carry it; events caused by other
// sockets' requests carry theirs.
napi_value netlink_port_id(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (args_init(env, info, "netlinkPortId", 1, &a) || arg_fd(&a, 0, &fd)) return NULL;
  struct sockaddr_nl local;
  socklen_t len = sizeof local;
  memset(&local, 0, sizeof local);
  if (getsockname(fd, (struct sockaddr *)&local, &len) < 0)
    return throw_errno(env, errno, "getsockname", "netlink", NULL);
  return ret_int(env, local.nl_pid);
}

// netlinkSend(fd, msg): sends one datagram (one or more complete netlink
// messages built in TypeScript) to the kernel.
napi_value netlink_send(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  uint8_t *msg;
  size_t len;
  if (args_init(env, info, "netlinkSend", 2, &a) || arg_fd(&a, 0, &fd) ||
      arg_u8(&a, 1, "msg", &msg, &len))
    return NULL;
  if (len < sizeof(struct nlmsghdr)) return throw_range(env, "netlinkSend", "msg is shorter than a netlink header");
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  ssize_t r;
  do {
    r = sendto(fd, msg, len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, errno, "sendto", "netlink", NULL);
  return ret_undefined(env);
}

// netlinkRecv(fd, buf): length of the next datagram from the kernel, copied
// into buf; 0 when none is queued. Datagrams from other sockets (any process
// may unicast to a netlink port) are dropped here. Throws ENOBUFS when the
// kernel had to drop messages for this socket (the caller re-reads
// everything) and EMSGSIZE when a datagram did not fit buf.
napi_value netlink_recv(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  uint8_t *buf;
  size_t len;
  if (args_init(env, info, "netlinkRecv", 2, &a) || arg_fd(&a, 0, &fd) ||
      arg_u8(&a, 1, "buf", &buf, &len))
    return NULL;
  for (;;) {
    struct sockaddr_nl from;
    socklen_t flen = sizeof from;
    memset(&from, 0, sizeof from);
    ssize_t r = recvfrom(fd, buf, len, MSG_TRUNC | MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return ret_int(env, 0);
      return throw_errno(env, errno, "recvfrom", "netlink", errno == ENOBUFS ? "messages were lost: the socket's queue overflowed" : NULL);
    }
    if (from.nl_family != AF_NETLINK || from.nl_pid != 0) continue;  // not the kernel
    if ((size_t)r > len) return throw_errno(env, EMSGSIZE, "recvfrom", "netlink", "datagram larger than the receive buffer");
    return ret_int(env, r);
  }
}

// A uv_poll on one fd, calling a JavaScript function when it is readable.
typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  bool stopped;    // uv_poll_stop and uv_close called
  bool closed;     // uv_close finished
  bool finalized;  // the JavaScript handle was collected
} nl_watch_t;

// The struct is freed by whichever comes last: libuv's close callback or
// the finalizer of the JavaScript handle that points to it.
static void watch_closed(uv_handle_t *h) {
  nl_watch_t *w = h->data;
  w->closed = true;
  if (w->finalized) free(w);
}

static void watch_stop(nl_watch_t *w) {
  if (w->stopped) return;
  w->stopped = true;
  uv_poll_stop(&w->poll);
  if (w->callback) napi_delete_reference(w->env, w->callback);
  if (w->async) napi_async_destroy(w->env, w->async);
  w->callback = NULL;
  w->async = NULL;
  uv_close((uv_handle_t *)&w->poll, watch_closed);
}

static void watch_cleanup_hook(void *arg) {
  nl_watch_t *w = arg;
  if (w->stopped) return;
  // The environment is going away: no JavaScript may run any more.
  w->stopped = true;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, watch_closed);
}

static void watch_ready(uv_poll_t *p, int status, int events) {
  (void)events;
  nl_watch_t *w = p->data;
  if (w->stopped) return;
  // On POLLERR (a netlink socket reports ENOBUFS that way: sk_err is set)
  // libuv stops the handle and passes a negative status (uv__poll_io in
  // src/unix/poll.c). The callback's recv reports and clears the error;
  // then the watch starts again, or no event would ever be seen again.
  napi_handle_scope scope;
  if (napi_open_handle_scope(w->env, &scope) != napi_ok) return;
  napi_value cb, recv, result;
  if (napi_get_reference_value(w->env, w->callback, &cb) == napi_ok && cb != NULL &&
      napi_get_global(w->env, &recv) == napi_ok) {  // make_callback needs an object receiver
    // make_callback: microtasks (promise reactions) run after it, as for any I/O callback.
    if (napi_make_callback(w->env, w->async, recv, cb, 0, NULL, &result) == napi_pending_exception) {
      napi_value err;
      if (napi_get_and_clear_last_exception(w->env, &err) == napi_ok) napi_fatal_exception(w->env, err);
    }
  }
  napi_close_handle_scope(w->env, scope);
  if (status < 0 && !w->stopped) uv_poll_start(&w->poll, UV_READABLE, watch_ready);
}

static void watch_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  nl_watch_t *w = data;
  w->finalized = true;
  if (!w->stopped) {
    napi_remove_env_cleanup_hook(env, watch_cleanup_hook, w);
    watch_stop(w);
  } else if (w->closed) {
    free(w);
  }
}

// netlinkWatch(fd, callback): handle
// Calls callback() on the calling thread's event loop whenever fd is
// readable (and on errors, which the next recv reports). The watch does not
// keep the process alive (uv_unref): a daemon waits for other reasons.
// netlinkUnwatch(handle) stops it; the fd stays open (close it with close()).
napi_value netlink_watch(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (args_init(env, info, "netlinkWatch", 2, &a) || arg_fd(&a, 0, &fd)) return NULL;
  napi_valuetype t;
  if (napi_typeof(env, a.argv[1], &t) != napi_ok || t != napi_function)
    return throw_type(env, "netlinkWatch", "callback must be a function");
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return throw_errno(env, EINVAL, "napi_get_uv_event_loop", "netlink", NULL);
  nl_watch_t *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, ENOMEM, "calloc", "netlink", NULL);
  w->env = env;
  int r = uv_poll_init(loop, &w->poll, fd);
  if (r != 0) {
    free(w);  // uv_poll_init failed: nothing to close
    return throw_errno(env, -r, "uv_poll_init", "netlink", NULL);
  }
  w->poll.data = w;
  napi_value name, handle;
  if (napi_create_reference(env, a.argv[1], 1, &w->callback) != napi_ok ||
      napi_create_string_utf8(env, "fand:netlink", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &w->async) != napi_ok ||
      napi_create_external(env, w, watch_finalize, NULL, &handle) != napi_ok) {
    w->finalized = true;  // no handle will ever point to it: the close callback frees it
    watch_stop(w);
    return throw_errno(env, ENOMEM, "napi", "netlink", "cannot set up the watch");
  }
  r = uv_poll_start(&w->poll, UV_READABLE, watch_ready);
  if (r != 0) {
    watch_stop(w);  // the handle's finalizer frees it
    return throw_errno(env, -r, "uv_poll_start", "netlink", NULL);
  }
  uv_unref((uv_handle_t *)&w->poll);
  napi_add_env_cleanup_hook(env, watch_cleanup_hook, w);
  return handle;
}

// netlinkUnwatch(handle): stops a watch (idempotent).
napi_value netlink_unwatch(napi_env env, napi_callback_info info) {
  args_t a;
  if (args_init(env, info, "netlinkUnwatch", 1, &a)) return NULL;
  napi_valuetype t;
  void *data = NULL;
  if (napi_typeof(env, a.argv[0], &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, a.argv[0], &data) != napi_ok || data == NULL)
    return throw_type(env, "netlinkUnwatch", "handle must come from netlinkWatch");
  nl_watch_t *w = data;
  if (!w->stopped) {
    napi_remove_env_cleanup_hook(env, watch_cleanup_hook, w);
    watch_stop(w);
  }
  return ret_undefined(env);
}
