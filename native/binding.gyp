{
  "targets": [
    {
      "target_name": "fand_native",
      "sources": [
        "module.c",
        "common.c",
        "tun.c",
        "csum.c",
        "sockets.c",
        "poll.c",
        "notify.c",
        "netlink.c",
        "udp.c",
        "bpf.c"
      ],
      "cflags": [
        "-O2",
        "-Wall",
        "-Wextra",
        "-std=gnu11"
      ],
      "cflags!": [
        "-O3"
      ]
    }
  ]
}
