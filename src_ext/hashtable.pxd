# cython: language_level=3
"""Open-addressing hash tables over Arrow rows, built in parallel by hash partition.

A slot holds a 32-bit hash tag and the row of the first row with that key, so a probe touches
one slot line and compares keys only on a tag hit. Keys are up to two strings and one integer.
Large tables of string keys also keep a copy of each row's key bytes, in row order: a key
compare then reads one line instead of two string views and the bytes out of line.
"""

from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from arrow_access cimport (Col, StrRef, col_i64, col_is_null, col_str, prefetch_str,
                          prefetch_str_data, str_eq)
from hashing cimport hash_int, hash_str

cdef extern from "mc_int128.h":
    void mc_prefetch "MC_PREFETCH"(const void* p) noexcept nogil

cdef extern from "mc_memory.h":
    void mc_advise_huge(const void* p, size_t n, int collapse) noexcept nogil

cdef extern from "stdlib.h":
    int posix_memalign(void** out, size_t alignment, size_t size) noexcept nogil

cdef extern from "mc_bytes.h":
    bint mc_bytes_eq(const char* a, const char* b, int64_t n) noexcept nogil

ctypedef struct Slot:
    uint32_t tag
    int32_t row         # -1: empty

ctypedef struct KeySpec:
    const Col* s0       # first string part
    const Col* s1       # second string part, or NULL
    const Col* i0       # integer part, or NULL

ctypedef struct KeyVal:
    StrRef s0
    StrRef s1
    int64_t i0
    bint has_null       # a key with a null part matches nothing

ctypedef struct HashTable:
    Slot* slots
    int part_bits       # partitions = 2 ** part_bits, chosen by the top hash bits
    uint64_t part_mask  # slots per partition - 1
    int64_t size        # rows the table was built over
    uint8_t* keys       # KEY_COPY bytes per row (copy_key), or NULL

# Rows prefetched ahead of the row being inserted or probed.
cdef enum:
    PREFETCH_AHEAD = 16   # rows between the build's slot, key view, key bytes prefetches
    PROBE_DISTANCE = 16   # rows between the slot, key view, key bytes prefetches and the lookup
    PROBE_BLOCK = 1024    # rows a thread takes at a time
    # Tables of at most this many rows (a stream's micro-batch) stay in cache: software
    # prefetching them costs more instructions than the misses it would hide.
    CACHED_ROWS = 4096

cdef enum:
    KEY_COPY = 32             # bytes per row: two lengths, then both strings' bytes
    KEY_NOT_COPIED = 255      # first byte of a row whose key does not fit (or has a null)
    KEY_COPY_MIN_ROWS = 65536 # smaller tables stay in cache: no copies


cdef inline KeyVal key_at(const KeySpec* k, int64_t row) noexcept nogil:
    """The key of `row` of the table `k` describes."""
    cdef KeyVal v
    v.s0 = col_str(k.s0, row)
    v.has_null = v.s0.len < 0
    if k.s1 != NULL:
        v.s1 = col_str(k.s1, row)
        v.has_null = v.has_null or v.s1.len < 0
    else:
        v.s1.ptr = NULL
        v.s1.len = 0
    if k.i0 != NULL:
        v.has_null = v.has_null or col_is_null(k.i0, row)
        v.i0 = col_i64(k.i0, row, 0)
    else:
        v.i0 = 0
    return v


cdef inline uint64_t key_hash_after(const KeyVal* v, uint64_t s0_hash) noexcept nogil:
    """key_hash(v) from s0_hash = hash_str(v.s0, 0): keys sharing their first part hash it once."""
    return hash_int(v.i0, hash_str(v.s1, s0_hash))


cdef inline uint64_t key_hash(const KeyVal* v) noexcept nogil:
    return key_hash_after(v, hash_str(v.s0, 0))


cdef inline bint key_eq(const KeyVal* a, const KeyVal* b) noexcept nogil:
    return str_eq(a.s0, b.s0) and str_eq(a.s1, b.s1) and a.i0 == b.i0


cdef inline int64_t _capacity_for(int64_t rows) noexcept nogil:
    """A power of two with load factor <= 1/2 (at least 16 slots)."""
    cdef int64_t cap = 16
    while cap < 2 * rows:
        cap <<= 1
    return cap


cdef inline int table_init(HashTable* t, int64_t rows, int part_bits) noexcept nogil:
    """Allocate an empty table for `rows` keys split in 2**part_bits partitions; -1 if no memory."""
    cdef int64_t parts = 1 << part_bits
    cdef int64_t cap = _capacity_for(rows // parts + 1)
    t.keys = NULL
    t.part_bits = part_bits
    t.part_mask = <uint64_t>(cap - 1)
    t.size = rows
    t.slots = <Slot*>malloc(<size_t>(cap * parts) * sizeof(Slot))
    if t.slots == NULL:
        return -1
    mc_advise_huge(t.slots, <size_t>(cap * parts) * sizeof(Slot), 0)  # before first touch
    memset(t.slots, 0xFF, <size_t>(cap * parts) * sizeof(Slot))  # row = -1 everywhere
    return 0


cdef inline void table_free(HashTable* t) noexcept nogil:
    free(t.slots)
    free(t.keys)
    t.slots = NULL
    t.keys = NULL


cdef inline void table_copy_keys(HashTable* t, int64_t rows) noexcept nogil:
    """Room for the key copies of `rows` rows, line-aligned so that no copy spans two lines
    (without memory the table just compares from the columns)."""
    cdef void* keys = NULL
    if posix_memalign(&keys, 64, <size_t>(rows * KEY_COPY)) != 0:
        return
    mc_advise_huge(keys, <size_t>(rows * KEY_COPY), 0)  # before first touch
    t.keys = <uint8_t*>keys


cdef inline void copy_key(uint8_t* e, const KeyVal* v) noexcept nogil:
    """Store a two-string key in its KEY_COPY bytes, or mark it KEY_NOT_COPIED."""
    if v.has_null or v.s0.len + v.s1.len > KEY_COPY - 2:
        e[0] = KEY_NOT_COPIED
        return
    e[0] = <uint8_t>v.s0.len
    e[1] = <uint8_t>v.s1.len
    memcpy(e + 2, v.s0.ptr, <size_t>v.s0.len)
    if v.s1.len > 0:
        memcpy(e + 2 + v.s0.len, v.s1.ptr, <size_t>v.s1.len)


cdef inline bint row_key_eq(const HashTable* t, const KeySpec* k, int32_t row,
                            const KeyVal* v) noexcept nogil:
    """The key of build row `row` equals v (non-null), from the key copy when there is one."""
    cdef const uint8_t* e
    cdef KeyVal other
    if t.keys != NULL:
        e = t.keys + <int64_t>KEY_COPY * row
        if e[0] != KEY_NOT_COPIED:
            return e[0] == v.s0.len and e[1] == v.s1.len and \
                mc_bytes_eq(<const char*>e + 2, v.s0.ptr, v.s0.len) and \
                mc_bytes_eq(<const char*>e + 2 + e[0], v.s1.ptr, v.s1.len)
    other = key_at(k, row)
    return key_eq(&other, v)


cdef inline Slot* slot_of(const HashTable* t, uint64_t h) noexcept nogil:
    """The home slot of hash h: partition from the top bits, position from the low bits."""
    cdef uint64_t part = (h >> (64 - t.part_bits)) if t.part_bits > 0 else 0
    return t.slots + ((part * (t.part_mask + 1)) + (h & t.part_mask))


cdef inline int64_t partition_of(const HashTable* t, uint64_t h) noexcept nogil:
    return <int64_t>(h >> (64 - t.part_bits)) if t.part_bits > 0 else 0


cdef inline int32_t table_find(const HashTable* t, const KeySpec* k, const KeyVal* v,
                               uint64_t h) noexcept nogil:
    """Row of the first row with key v, or -1."""
    cdef Slot* base = slot_of(t, 0) if t.part_bits == 0 else \
        t.slots + (<uint64_t>partition_of(t, h) * (t.part_mask + 1))
    cdef uint64_t pos = h & t.part_mask
    cdef uint32_t tag = <uint32_t>(h >> 32)
    if v.has_null:
        return -1
    while base[pos].row >= 0:
        if base[pos].tag == tag and row_key_eq(t, k, base[pos].row, v):
            return base[pos].row
        pos = (pos + 1) & t.part_mask
    return -1


cdef inline int32_t table_insert(HashTable* t, const KeySpec* k, const KeyVal* v, uint64_t h,
                                 int32_t row) noexcept nogil:
    """Insert `row` unless its key is there; return the first row with that key."""
    cdef Slot* base = t.slots + (<uint64_t>partition_of(t, h) * (t.part_mask + 1))
    cdef uint64_t pos = h & t.part_mask
    cdef uint32_t tag = <uint32_t>(h >> 32)
    while base[pos].row >= 0:
        if base[pos].tag == tag and row_key_eq(t, k, base[pos].row, v):
            return base[pos].row
        pos = (pos + 1) & t.part_mask
    base[pos].tag = tag
    base[pos].row = row
    return row


cdef inline void hash_rows(const KeySpec* k, int64_t n, uint64_t* hashes, int32_t* first,
                           int threads, uint8_t* keys) noexcept nogil:
    """Hash every row; first[row] = -1 for a key with a null part, else 0 (to be built).
    keys (or NULL) receives every row's key copy."""
    cdef int64_t row
    cdef KeyVal v
    for row in prange(n, schedule="static", num_threads=threads):
        v = key_at(k, row)
        hashes[row] = key_hash(&v)
        first[row] = -1 if v.has_null else 0
        if keys != NULL:
            copy_key(keys + <int64_t>KEY_COPY * row, &v)


cdef inline int32_t candidate_row(const HashTable* t, uint64_t h) noexcept nogil:
    """The row in h's home slot if its tag matches, else -1 (the slot is in cache by now)."""
    cdef Slot* home = slot_of(t, h)
    if home.row >= 0 and home.tag == <uint32_t>(h >> 32):
        return home.row
    return -1


cdef inline void prefetch_candidate(const HashTable* t, const KeySpec* build,
                                    uint64_t h) noexcept nogil:
    """Prefetch the key copy, else the key views, of the row in h's home slot, if its tag
    matches."""
    cdef int32_t row = candidate_row(t, h)
    if row >= 0 and t.keys != NULL:
        mc_prefetch(t.keys + <int64_t>KEY_COPY * row)
    elif row >= 0:
        prefetch_str(build.s0, row)
        if build.s1 != NULL:
            prefetch_str(build.s1, row)


cdef inline void prefetch_candidate_bytes(const HashTable* t, const KeySpec* build,
                                          uint64_t h) noexcept nogil:
    """Prefetch the out-of-line key bytes of that row (its views are in cache by now): an
    order number is longer than a string view holds inline."""
    cdef int32_t row = candidate_row(t, h)
    if row >= 0 and t.keys != NULL and t.keys[<int64_t>KEY_COPY * row] != KEY_NOT_COPIED:
        return  # the copy holds the bytes
    if row >= 0:
        prefetch_str_data(build.s0, row)
        if build.s1 != NULL:
            prefetch_str_data(build.s1, row)


cdef inline bint builds_here(const HashTable* t, const uint64_t* hashes, const int32_t* first,
                             int64_t row, int64_t p) noexcept nogil:
    """Row `row` has a key to insert and it belongs to partition p."""
    return first[row] >= 0 and partition_of(t, hashes[row]) == p


cdef inline void build_rows(HashTable* t, const KeySpec* k, int64_t n, const uint64_t* hashes,
                            int32_t* first, int threads) noexcept nogil:
    """Insert rows 0..n-1 in order; first[row] = the first row with the same key (-1 if null).

    Each thread owns one partition and scans every hash, so insertion order (and so the
    "first row wins" answer) is the same as a serial build. Prefetched like probe_block: a
    repeated key (a buyer's second order) is compared with its first row's key bytes.
    """
    cdef int64_t parts = 1 << t.part_bits
    cdef int64_t p, row, d = PREFETCH_AHEAD
    cdef int64_t prefetched = n if n > CACHED_ROWS else 0  # rows that prefetches reach
    cdef KeyVal v
    for p in prange(parts, schedule="static", num_threads=threads):
        for row in range(n):
            if row + 3 * d < prefetched and builds_here(t, hashes, first, row + 3 * d, p):
                mc_prefetch(slot_of(t, hashes[row + 3 * d]))
            if row + 2 * d < prefetched and builds_here(t, hashes, first, row + 2 * d, p):
                prefetch_candidate(t, k, hashes[row + 2 * d])
            if row + d < prefetched and builds_here(t, hashes, first, row + d, p):
                prefetch_candidate_bytes(t, k, hashes[row + d])
            if not builds_here(t, hashes, first, row, p):
                continue
            v = key_at(k, row)
            first[row] = table_insert(t, k, &v, hashes[row], <int32_t>row)


cdef inline int table_build(HashTable* t, const KeySpec* k, int64_t n, uint64_t* hashes,
                            int32_t* first, int part_bits, int threads) noexcept nogil:
    """Hash and insert every row of the table `k` describes; see build_rows. -1 if no memory."""
    if table_init(t, n, part_bits) != 0:
        return -1
    if n >= KEY_COPY_MIN_ROWS and k.i0 == NULL:
        table_copy_keys(t, n)
    if part_bits == 0 and n <= CACHED_ROWS:
        build_cached(t, k, n, hashes, first)
        return 0
    hash_rows(k, n, hashes, first, threads, t.keys)
    build_rows(t, k, n, hashes, first, threads)
    return 0


cdef inline void build_cached(HashTable* t, const KeySpec* k, int64_t n, uint64_t* hashes,
                              int32_t* first) noexcept nogil:
    """hash_rows then build_rows for a table of one partition that stays in cache (a stream's
    micro-batch): in one pass on this thread, each row's key read once."""
    cdef int64_t row
    cdef KeyVal v
    for row in range(n):
        v = key_at(k, row)
        hashes[row] = key_hash(&v)
        first[row] = -1 if v.has_null else table_insert(t, k, &v, hashes[row], <int32_t>row)


cdef inline void hash_and_prefetch(const HashTable* t, const KeySpec* probe, int64_t row,
                                   uint64_t* h) noexcept nogil:
    cdef KeyVal v = key_at(probe, row)
    h[0] = key_hash(&v)
    mc_prefetch(slot_of(t, h[0]))


cdef inline void probe_block(const HashTable* t, const KeySpec* build, const KeySpec* probe,
                             int64_t start, int64_t end, int32_t* found) noexcept nogil:
    """found[] for rows start..end-1 (at most PROBE_BLOCK), software-pipelined in three stages
    PROBE_DISTANCE rows apart: a row's slot is asked for, then its candidate's key copy (or key
    views), then the key bytes when not copied, so these dependent misses overlap with the
    lookups in between."""
    cdef int64_t row, d = PROBE_DISTANCE
    cdef KeyVal v
    cdef uint64_t hs[PROBE_BLOCK]  # the block's hashes: 8 KiB of stack, nothing to allocate
    for row in range(start, min(start + 3 * d, end)):
        hash_and_prefetch(t, probe, row, hs + (row - start))
    for row in range(start, min(start + 2 * d, end)):
        prefetch_candidate(t, build, hs[row - start])
    for row in range(start, min(start + d, end)):
        prefetch_candidate_bytes(t, build, hs[row - start])
    for row in range(start, end):
        if row + 3 * d < end:
            hash_and_prefetch(t, probe, row + 3 * d, hs + (row + 3 * d - start))
        if row + 2 * d < end:
            prefetch_candidate(t, build, hs[row + 2 * d - start])
        if row + d < end:
            prefetch_candidate_bytes(t, build, hs[row + d - start])
        v = key_at(probe, row)
        found[row] = table_find(t, build, &v, hs[row - start])


cdef inline void probe_cached(const HashTable* t, const KeySpec* build, const KeySpec* probe,
                              int64_t n, int32_t* found) noexcept nogil:
    """probe_rows for a table of at most CACHED_ROWS rows: one row after the other."""
    cdef int64_t row
    cdef KeyVal v
    for row in range(n):
        v = key_at(probe, row)
        found[row] = table_find(t, build, &v, key_hash(&v))


cdef inline void probe_rows(const HashTable* t, const KeySpec* build, const KeySpec* probe,
                            int64_t n, int32_t* found, int threads) noexcept nogil:
    """found[row] = first build row whose key equals probe row's key, else -1 (in parallel;
    a small table probed by at most a block of rows, on this thread, unpipelined)."""
    if t.size <= CACHED_ROWS and n <= PROBE_BLOCK:
        probe_cached(t, build, probe, n, found)
    else:
        probe_pipelined(t, build, probe, n, found, threads)


cdef inline void probe_pipelined(const HashTable* t, const KeySpec* build, const KeySpec* probe,
                                 int64_t n, int32_t* found, int threads) noexcept nogil:
    """probe_rows in prefetched blocks of PROBE_BLOCK rows, in parallel."""
    cdef int64_t nblocks = (n + PROBE_BLOCK - 1) // PROBE_BLOCK
    cdef int64_t b
    for b in prange(nblocks, schedule="dynamic", num_threads=threads):
        probe_block(t, build, probe, b * PROBE_BLOCK, min((b + 1) * PROBE_BLOCK, n), found)
