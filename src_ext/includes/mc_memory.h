/* Huge-page hints: random probes into large Arrow buffers and hash tables are bound by TLB
   misses on 4 KiB pages (measured ~3x slower per random load than on 2 MiB pages here). */
#ifndef MATCHCORE_MEMORY_H
#define MATCHCORE_MEMORY_H
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#define MC_HUGE ((uintptr_t)1 << 21)

/* Ask the kernel to back the 2 MiB-aligned interior of [p, p + n) with huge pages. `collapse`
   moves existing pages now (Linux >= 6.1); otherwise later faults get huge pages. Errors are
   ignored: this is only a hint. */
static inline void mc_advise_huge(const void* p, size_t n, int collapse) {
  uintptr_t start = ((uintptr_t)p + MC_HUGE - 1) & ~(MC_HUGE - 1);
  uintptr_t end = ((uintptr_t)p + n) & ~(MC_HUGE - 1);
  if (p == NULL || end <= start) return;
  (void)madvise((void*)start, end - start, collapse ? MADV_COLLAPSE : MADV_HUGEPAGE);
}
#endif
