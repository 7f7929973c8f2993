/* Byte-string equality for short keys without a libc call: order numbers and codes are
   mostly 8-32 bytes, where a memcmp call (PLT + length dispatch) costs more than the compare.
   Loads overlap inside [p, p + n), so nothing past the string is read. */
#ifndef MATCHCORE_BYTES_H
#define MATCHCORE_BYTES_H
#include <stdint.h>
#include <string.h>

static inline __attribute__((always_inline)) uint64_t mc_load64(const char* p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static inline __attribute__((always_inline)) uint32_t mc_load32(const char* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* 1 when the n bytes at a and b are equal (n >= 0). */
static inline __attribute__((always_inline)) int mc_bytes_eq(const char* a, const char* b, int64_t n) {
  if (n >= 8) {
    int64_t i = 0;
    uint64_t diff = 0;
    for (; i + 8 < n; i += 8) diff |= mc_load64(a + i) ^ mc_load64(b + i);
    diff |= mc_load64(a + n - 8) ^ mc_load64(b + n - 8);  /* last word, overlapping */
    return diff == 0;
  }
  if (n >= 4)
    return ((mc_load32(a) ^ mc_load32(b)) | (mc_load32(a + n - 4) ^ mc_load32(b + n - 4))) == 0;
  for (int64_t i = 0; i < n; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}
#endif
