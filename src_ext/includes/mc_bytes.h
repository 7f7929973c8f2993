/* Byte-string equality for short keys without a libc call: order numbers and codes are
   mostly 8-32 bytes, where a memcmp call (PLT + length dispatch) costs more than the compare.
   Loads overlap inside [p, p + n), so nothing past the string is read. And the word-at-a-time
   reading of JSON strings and amounts (`mc_plain_end`, `mc_four_digits`). */
#ifndef MATCHCORE_BYTES_H
#define MATCHCORE_BYTES_H
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

/* Copy `n` bytes: up to 32 by overlapping word moves (the usual keys, codes and names),
   without the call and size dispatch of memcpy. */
static inline void mc_copy(char* to, const void* source, int64_t n) {
  const char* from = (const char*)source;
  uint64_t a, b, c, d;
  uint32_t e, f;
  if (n >= 8 && n <= 16) {
    memcpy(&a, from, 8); memcpy(&b, from + n - 8, 8);
    memcpy(to, &a, 8); memcpy(to + n - 8, &b, 8);
  } else if (n > 16 && n <= 32) {
    memcpy(&a, from, 8); memcpy(&b, from + 8, 8);
    memcpy(&c, from + n - 16, 8); memcpy(&d, from + n - 8, 8);
    memcpy(to, &a, 8); memcpy(to + 8, &b, 8);
    memcpy(to + n - 16, &c, 8); memcpy(to + n - 8, &d, 8);
  } else if (n >= 4 && n < 8) {
    memcpy(&e, from, 4); memcpy(&f, from + n - 4, 4);
    memcpy(to, &e, 4); memcpy(to + n - 4, &f, 4);
  } else if (n > 32) {
    memcpy(to, from, n);
  } else {
    for (int64_t i = 0; i < n; i++) to[i] = from[i];
  }
}

/* The four bytes at p as a little-endian word, whatever the machine's byte order. */
static inline __attribute__((always_inline)) uint32_t mc_little32(const uint8_t* p) {
  uint32_t w = mc_load32((const char*)p);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  w = __builtin_bswap32(w);
#endif
  return w;
}

/* Whether byte c is plain in a JSON string: 0x21-0x7F but quote and backslash. */
static inline __attribute__((always_inline)) int mc_plain_byte(uint8_t c) {
  return c >= 0x21 && c <= 0x7F && c != 0x22 && c != 0x5C;
}

#if defined(__SSE2__)
/* The bytes of the 16 at p that are not plain, as bits: those below 0x21 as signed (so also
   every byte from 0x80), quotes and backslashes. */
static inline __attribute__((always_inline)) unsigned mc_not_plain16(const uint8_t* p) {
  __m128i x = _mm_loadu_si128((const __m128i*)p);
  __m128i bad = _mm_or_si128(
      _mm_cmplt_epi8(x, _mm_set1_epi8(0x21)),
      _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(0x22)), _mm_cmpeq_epi8(x, _mm_set1_epi8(0x5C))));
  return (unsigned)_mm_movemask_epi8(bad);
}
#endif

/* The index of the first byte from i that is not plain of the n at p (n when none is), a
   block at a time. SSE2: 16 bytes, the last block the one that ends at n (its bytes before
   i shifted out), so nothing past n is read. Else eight bytes as a little-endian word: a
   byte's high bit is set in `w` (not ASCII), in `w` - 0x21 a byte (below 0x21), in
   `w` ^ quote - 1 a byte (a quote; a backslash likewise) only at or after the first byte
   that is not plain, as a borrow only comes out of such a byte: the lowest bit set is in
   that byte. */
static inline __attribute__((always_inline)) int64_t mc_plain_end(
    const uint8_t* p, int64_t i, int64_t n) {
#if defined(__SSE2__)
  unsigned mask;
  for (; i + 16 <= n; i += 16) {
    mask = mc_not_plain16(p + i);
    if (mask != 0) return i + __builtin_ctz(mask);
  }
  if (n >= 16) {
    mask = mc_not_plain16(p + n - 16) >> (i - (n - 16));
    return mask != 0 ? i + __builtin_ctz(mask) : n;
  }
#else
  const uint64_t ones = 0x0101010101010101ULL;
  uint64_t w, bad;
  for (; i + 8 <= n; i += 8) {
    w = mc_load64((const char*)p + i);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    bad = (w | (w - 0x21 * ones) | ((w ^ 0x22 * ones) - ones) | ((w ^ 0x5C * ones) - ones))
          & 0x8080808080808080ULL;
    if (bad != 0) return i + (__builtin_ctzll(bad) >> 3);
  }
#endif
  while (i < n && mc_plain_byte(p[i])) i++;
  return i;
}

/* Whether the four bytes at p are ASCII digits: then `value` is their number (p[0] the most
   significant digit) and `zeros` how many of them end it in '0' (amounts' places). A digit's
   high nibble is 3, and still is with 6 added (a carry only comes out of a byte that is no
   digit); pairs of digits, then the pairs, are combined in place. */
static inline __attribute__((always_inline)) int mc_four_digits(
    const uint8_t* p, uint32_t* value, int* zeros) {
  uint32_t w = mc_little32(p);  /* p[0] the lowest byte */
  if (((w & 0xF0F0F0F0u) | (((w + 0x06060606u) & 0xF0F0F0F0u) >> 4)) != 0x33333333u) return 0;
  w -= 0x30303030u;
  *zeros = w == 0 ? 4 : __builtin_clz(w) >> 3;
  w = (w * 10 + (w >> 8)) & 0x00FF00FFu;
  *value = (w * 100 + (w >> 16)) & 0xFFFFu;
  return 1;
}
#endif
