// eBPF: the bpf(2) calls of the ebpf dataplane's loader, one binding each.
// No policy and no ELF here: src/dataplane/ebpf/ parses the object, decides
// which maps to create and patches their fds into the instructions; these
// functions only make the syscalls and report the kernel's answer.
//   bpfMapCreate   BPF_MAP_CREATE
//   bpfMapUpdate   BPF_MAP_UPDATE_ELEM
//   bpfMapLookup   BPF_MAP_LOOKUP_ELEM (per-CPU maps: one value per possible CPU)
//   bpfMapDelete   BPF_MAP_DELETE_ELEM
//   bpfProgLoad    BPF_PROG_LOAD, the verifier's log into a caller's buffer
//   bpfProgTestRun BPF_PROG_TEST_RUN (tests run the programs on packets)
//   bpfProgInfo    BPF_OBJ_GET_INFO_BY_FD for a program (id, tag, name)
// Attaching is rtnetlink (netlinkRequest), built in TypeScript.

#include "common.h"

#include <linux/bpf.h>
#include <sys/syscall.h>

static long sys_bpf(int cmd, union bpf_attr *attr) {
  long r;
  do {
    r = syscall(__NR_bpf, cmd, attr, sizeof *attr);
  } while (r < 0 && errno == EINTR);
  return r;
}

// A kernel object name: at most BPF_OBJ_NAME_LEN - 1 bytes, [A-Za-z0-9_.].
static int arg_obj_name(args_t *a, size_t i, char *out) {
  bool too_long;
  if (arg_str(a, i, "name", out, BPF_OBJ_NAME_LEN - 1, &too_long)) return -1;
  if (too_long) {
    throw_range(a->env, a->fn, "name must be at most 15 bytes (BPF_OBJ_NAME_LEN)");
    return -1;
  }
  return 0;
}

// bpfMapCreate(type, keySize, valueSize, maxEntries, flags, name): fd
napi_value bpf_map_create(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t type, key, value, max, flags;
  char name[BPF_OBJ_NAME_LEN];
  if (args_init(env, info, "bpfMapCreate", 6, &a) ||
      arg_int_in(&a, 0, "type", 0, INT32_MAX, &type) ||
      arg_int_in(&a, 1, "keySize", 0, INT32_MAX, &key) ||
      arg_int_in(&a, 2, "valueSize", 0, INT32_MAX, &value) ||
      arg_int_in(&a, 3, "maxEntries", 0, INT32_MAX, &max) ||
      arg_int(&a, 4, "flags", &flags) || arg_obj_name(&a, 5, name))
    return NULL;
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_type = (uint32_t)type;
  attr.key_size = (uint32_t)key;
  attr.value_size = (uint32_t)value;
  attr.max_entries = (uint32_t)max;
  attr.map_flags = (uint32_t)flags;
  memcpy(attr.map_name, name, strlen(name));
  long fd = sys_bpf(BPF_MAP_CREATE, &attr);
  if (fd < 0) return throw_errno(env, errno, "bpf(BPF_MAP_CREATE)", NULL, name);
  // The kernel sets O_CLOEXEC on every bpf fd (anon_inode_getfd with
  // O_CLOEXEC in bpf_map_new_fd / bpf_prog_new_fd).
  return ret_int(env, fd);
}

// bpfMapUpdate(fd, key, value, flags)
napi_value bpf_map_update(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  int32_t flags;
  uint8_t *key, *value;
  size_t klen, vlen;
  if (args_init(env, info, "bpfMapUpdate", 4, &a) || arg_fd(&a, 0, &fd) ||
      arg_u8(&a, 1, "key", &key, &klen) || arg_u8(&a, 2, "value", &value, &vlen) ||
      arg_int(&a, 3, "flags", &flags))
    return NULL;
  // The kernel reads key_size and value_size (x possible CPUs) bytes: the
  // caller sizes the buffers from the map's definition; empty is refused.
  if (klen == 0 || vlen == 0) return throw_range(env, "bpfMapUpdate", "key and value must not be empty");
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_fd = (uint32_t)fd;
  attr.key = (uint64_t)(uintptr_t)key;
  attr.value = (uint64_t)(uintptr_t)value;
  attr.flags = (uint64_t)(uint32_t)flags;
  if (sys_bpf(BPF_MAP_UPDATE_ELEM, &attr) < 0)
    return throw_errno(env, errno, "bpf(BPF_MAP_UPDATE_ELEM)", NULL, NULL);
  return ret_undefined(env);
}

// bpfMapLookup(fd, key, value): true when found (value written)
napi_value bpf_map_lookup(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  uint8_t *key, *value;
  size_t klen, vlen;
  if (args_init(env, info, "bpfMapLookup", 3, &a) || arg_fd(&a, 0, &fd) ||
      arg_u8(&a, 1, "key", &key, &klen) || arg_u8(&a, 2, "value", &value, &vlen))
    return NULL;
  if (klen == 0 || vlen == 0) return throw_range(env, "bpfMapLookup", "key and value must not be empty");
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_fd = (uint32_t)fd;
  attr.key = (uint64_t)(uintptr_t)key;
  attr.value = (uint64_t)(uintptr_t)value;
  if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr) < 0) {
    if (errno == ENOENT) return ret_bool(env, false);
    return throw_errno(env, errno, "bpf(BPF_MAP_LOOKUP_ELEM)", NULL, NULL);
  }
  return ret_bool(env, true);
}

// bpfMapDelete(fd, key): true when there was an element
napi_value bpf_map_delete(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  uint8_t *key;
  size_t klen;
  if (args_init(env, info, "bpfMapDelete", 2, &a) || arg_fd(&a, 0, &fd) ||
      arg_u8(&a, 1, "key", &key, &klen))
    return NULL;
  if (klen == 0) return throw_range(env, "bpfMapDelete", "key must not be empty");
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_fd = (uint32_t)fd;
  attr.key = (uint64_t)(uintptr_t)key;
  if (sys_bpf(BPF_MAP_DELETE_ELEM, &attr) < 0) {
    if (errno == ENOENT) return ret_bool(env, false);
    return throw_errno(env, errno, "bpf(BPF_MAP_DELETE_ELEM)", NULL, NULL);
  }
  return ret_bool(env, true);
}

// bpfProgLoad(type, insns, license, name, log): fd
// With a non-empty log buffer the verifier writes its log there (log_level
// 1): on failure that is why; the caller reads it up to the first NUL.
napi_value bpf_prog_load(napi_env env, napi_callback_info info) {
  args_t a;
  int32_t type;
  uint8_t *insns, *log;
  size_t ilen, loglen;
  char license[64], name[BPF_OBJ_NAME_LEN];
  bool too_long;
  if (args_init(env, info, "bpfProgLoad", 5, &a) ||
      arg_int_in(&a, 0, "type", 0, INT32_MAX, &type) ||
      arg_u8(&a, 1, "insns", &insns, &ilen) ||
      arg_str(&a, 2, "license", license, sizeof license - 1, &too_long) ||
      arg_obj_name(&a, 3, name) || arg_u8(&a, 4, "log", &log, &loglen))
    return NULL;
  if (too_long) return throw_range(env, "bpfProgLoad", "license must be at most 63 bytes");
  if (ilen == 0 || ilen % sizeof(struct bpf_insn) != 0)
    return throw_range(env, "bpfProgLoad", "insns must be a non-empty multiple of 8 bytes");
  if (loglen > UINT32_MAX) loglen = UINT32_MAX;
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = (uint32_t)type;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = (uint32_t)(ilen / sizeof(struct bpf_insn));
  attr.license = (uint64_t)(uintptr_t)license;
  memcpy(attr.prog_name, name, strlen(name));
  if (loglen > 0) {
    log[0] = 0;
    attr.log_level = 1;
    attr.log_buf = (uint64_t)(uintptr_t)log;
    attr.log_size = (uint32_t)loglen;
  }
  long fd = sys_bpf(BPF_PROG_LOAD, &attr);
  if (fd < 0) return throw_errno(env, errno, "bpf(BPF_PROG_LOAD)", NULL, name);
  return ret_int(env, fd);
}

// bpfProgTestRun(fd, dataIn, dataOut, ctxIn, repeat, result)
// result (Int32Array, 3): [0] program's return value, [1] bytes written to
// dataOut (the packet after the program), [2] average ns per run.
napi_value bpf_prog_test_run(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  int32_t repeat, *result;
  uint8_t *in, *out, *ctx;
  size_t inlen, outlen, ctxlen;
  if (args_init(env, info, "bpfProgTestRun", 6, &a) || arg_fd(&a, 0, &fd) ||
      arg_u8(&a, 1, "dataIn", &in, &inlen) || arg_u8(&a, 2, "dataOut", &out, &outlen) ||
      arg_u8(&a, 3, "ctxIn", &ctx, &ctxlen) ||
      arg_int_in(&a, 4, "repeat", 1, 1 << 20, &repeat) ||
      arg_i32(&a, 5, "result", 3, &result))
    return NULL;
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.test.prog_fd = (uint32_t)fd;
  attr.test.data_in = (uint64_t)(uintptr_t)in;
  attr.test.data_size_in = (uint32_t)inlen;
  attr.test.data_out = (uint64_t)(uintptr_t)out;
  attr.test.data_size_out = (uint32_t)outlen;
  if (ctxlen > 0) {
    attr.test.ctx_in = (uint64_t)(uintptr_t)ctx;
    attr.test.ctx_size_in = (uint32_t)ctxlen;
  }
  attr.test.repeat = (uint32_t)repeat;
  // ENOSPC: dataOut was too small; the kernel still reports the size.
  if (sys_bpf(BPF_PROG_TEST_RUN, &attr) < 0 && errno != ENOSPC)
    return throw_errno(env, errno, "bpf(BPF_PROG_TEST_RUN)", NULL, NULL);
  result[0] = (int32_t)attr.test.retval;
  result[1] = (int32_t)attr.test.data_size_out;
  result[2] = (int32_t)attr.test.duration;
  return ret_undefined(env);
}

static void set_num(napi_env env, napi_value obj, const char *key, double v) {
  napi_value n;
  if (napi_create_double(env, v, &n) == napi_ok) napi_set_named_property(env, obj, key, n);
}

static void set_str(napi_env env, napi_value obj, const char *key, const char *v) {
  napi_value s;
  if (napi_create_string_utf8(env, v, NAPI_AUTO_LENGTH, &s) == napi_ok) napi_set_named_property(env, obj, key, s);
}

// bpfProgInfo(fd): { id, tag (16 hex digits), name, xlatedBytes, jitedBytes }
napi_value bpf_prog_info(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (args_init(env, info, "bpfProgInfo", 1, &a) || arg_fd(&a, 0, &fd)) return NULL;
  struct bpf_prog_info pi;
  memset(&pi, 0, sizeof pi);
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.info.bpf_fd = (uint32_t)fd;
  attr.info.info_len = sizeof pi;
  attr.info.info = (uint64_t)(uintptr_t)&pi;
  if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0)
    return throw_errno(env, errno, "bpf(BPF_OBJ_GET_INFO_BY_FD)", NULL, NULL);
  char tag[2 * BPF_TAG_SIZE + 1];
  for (int i = 0; i < BPF_TAG_SIZE; i++) snprintf(tag + 2 * i, 3, "%02x", pi.tag[i]);
  char name[BPF_OBJ_NAME_LEN + 1];
  memcpy(name, pi.name, BPF_OBJ_NAME_LEN);
  name[BPF_OBJ_NAME_LEN] = 0;
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok) return NULL;
  set_num(env, obj, "id", pi.id);
  set_str(env, obj, "tag", tag);
  set_str(env, obj, "name", name);
  set_num(env, obj, "xlatedBytes", pi.xlated_prog_len);
  set_num(env, obj, "jitedBytes", pi.jited_prog_len);
  return obj;
}
