{
  "targets": [
    {
      "target_name": "fand_native",
      "sources": ["fand.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "cflags!": ["-O3"]
    }
  ]
}
