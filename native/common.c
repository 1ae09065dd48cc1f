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
//
// This file: the error and argument helpers shared by every binding.

#include "common.h"

// ---------------------------------------------------------------------------
// Errors

// Returns NULL after a pending exception was set, so callers can
// `return throw_...(...)`.
napi_value throw_errno(napi_env env, int err, const char *syscall,
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

napi_value throw_range(napi_env env, const char *fn, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", fn, what);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return NULL;
}

napi_value throw_type(napi_env env, const char *fn, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", fn, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

// ---------------------------------------------------------------------------
// Arguments. Each getter returns 0 on success, -1 after throwing.

int args_init(napi_env env, napi_callback_info info, const char *fn,
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

int arg_int(args_t *a, size_t i, const char *name, int32_t *out) {
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
int arg_int_in(args_t *a, size_t i, const char *name, int32_t lo,
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

int arg_fd(args_t *a, size_t i, int *out) {
  return arg_int_in(a, i, "fd", 0, INT32_MAX, out);
}

int arg_bool(args_t *a, size_t i, const char *name, bool *out) {
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
int arg_typed(args_t *a, size_t i, const char *name,
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

int arg_u8(args_t *a, size_t i, const char *name, uint8_t **data,
                  size_t *len) {
  return arg_typed(a, i, name, napi_uint8_array, "Uint8Array", (void **)data, len);
}

// An Int32Array with at least `need` elements.
int arg_i32(args_t *a, size_t i, const char *name, size_t need,
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

int arg_u32(args_t *a, size_t i, const char *name, size_t need,
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
int arg_str(args_t *a, size_t i, const char *name, char *buf, size_t max,
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
int check_slots(args_t *a, size_t len, int32_t slot, int32_t headroom,
                       int32_t count) {
  if (slot <= 0) return throw_range(a->env, a->fn, "slotSize must be > 0"), -1;
  if (headroom < 0 || headroom >= slot)
    return throw_range(a->env, a->fn, "headroom must be in [0, slotSize)"), -1;
  if ((uint64_t)slot * (uint64_t)count > len)
    return throw_range(a->env, a->fn, "maxCount * slotSize exceeds the buffer"), -1;
  return 0;
}

// Checks packets [offsets[i], offsets[i] + sizes[i]) lie in a buffer of len bytes.
int check_spans(args_t *a, size_t len, const int32_t *offsets,
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

napi_value ret_int(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

napi_value ret_undefined(napi_env env) {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

napi_value ret_bool(napi_env env, bool v) {
  napi_value r;
  napi_get_boolean(env, v, &r);
  return r;
}
