// sd_notify: systemd readiness, status and watchdog messages.

#include "common.h"

// ---------------------------------------------------------------------------
// sd_notify

// sdNotify(state, socketPath?): sent
// socketPath overrides $NOTIFY_SOCKET (read with getenv on each call).
// Returns false when neither names a socket. '@' = abstract namespace.
napi_value sd_notify(napi_env env, napi_callback_info info) {
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
