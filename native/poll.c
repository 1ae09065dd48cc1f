// poll, eventfd and close: what a worker loop waits on.

#include "common.h"

// ---------------------------------------------------------------------------
// poll, eventfd, close

// poll(fds, events, revents, n, timeoutMs): ready (0 on timeout or EINTR)
napi_value do_poll(napi_env env, napi_callback_info info) {
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

napi_value eventfd_open(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "eventfd", NULL, NULL);
  return ret_int(env, fd);
}

napi_value eventfd_signal(napi_env env, napi_callback_info info) {
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

napi_value eventfd_drain(napi_env env, napi_callback_info info) {
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

napi_value do_close(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (args_init(env, info, "close", 1, &a) || arg_fd(&a, 0, &fd)) return NULL;
  // On Linux the fd is released even when close fails with EINTR: never retry.
  if (close(fd) < 0 && errno != EINTR)
    return throw_errno(env, errno, "close", NULL, NULL);
  return ret_undefined(env);
}
