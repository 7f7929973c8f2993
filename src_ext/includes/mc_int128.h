/* Exact 128-bit helpers for SPEC 3.3 (qty x price) that Cython cannot spell natively. */
#ifndef MATCHCORE_INT128_H
#define MATCHCORE_INT128_H
#include <stdint.h>

/* |a*b - c*scale| > limit, computed without overflow (a, b, c are int64). */
static inline int mc_product_differs(int64_t a, int64_t b, int64_t c, int64_t scale, int64_t limit) {
  __int128 diff = (__int128)a * (__int128)b - (__int128)c * (__int128)scale;
  if (diff < 0) diff = -diff;
  return diff > (__int128)limit;
}

/* 64x64 -> high 64 bits xor low 64 bits: the wyhash mixing step. */
static inline uint64_t mc_mum(uint64_t a, uint64_t b) {
  unsigned __int128 r = (unsigned __int128)a * b;
  return (uint64_t)r ^ (uint64_t)(r >> 64);
}

#define MC_K0 0xa0761d6478bd642fULL
#define MC_K1 0xe7037ed1a0b428dbULL
#define MC_K2 0x8ebc6af09c88c6e3ULL
#define MC_KNULL 0x589965cc75374cc3ULL

/* Software prefetch as volatile asm: gcc 12 at -O1 and above deleted nearly every
   __builtin_prefetch in the kernel (3 of about 40 were left in the binary; the evaluate and
   probe pipelines fetched nothing ahead). An asm statement cannot be dropped. */
#define MC_PREFETCH(p) __asm__ volatile("prefetcht2 %0" : : "m"(*(const char*)(p)))
/* Ahead of a write: fetch the line for ownership (a no-op on CPUs without PREFETCHW). */
#define MC_PREFETCH_W(p) __asm__ volatile("prefetchw %0" : : "m"(*(const char*)(p)))
#endif
