# cython: language_level=3
"""Open-addressing hash tables over Arrow rows, built in parallel by hash partition.

A slot holds a 32-bit hash tag and the row of the first row with that key, so a probe touches
one slot line and compares keys only on a tag hit. Keys are up to two strings and one integer.
"""

from cython.parallel cimport parallel, prange
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from arrow_access cimport Col, StrRef, col_i64, col_is_null, col_str, prefetch_str, str_eq
from hashing cimport hash_int, hash_str

cdef extern from "mc_int128.h":
    void mc_prefetch "MC_PREFETCH"(const void* p) noexcept nogil

cdef extern from "mc_memory.h":
    void mc_advise_huge(const void* p, size_t n, int collapse) noexcept nogil

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

# Rows prefetched ahead of the row being inserted or probed.
cdef enum:
    PREFETCH_AHEAD = 16
    PROBE_DISTANCE = 16   # rows between the slot prefetch, the key prefetch and the lookup
    PROBE_BLOCK = 1024    # rows a thread takes at a time


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


cdef inline uint64_t key_hash(const KeyVal* v) noexcept nogil:
    cdef uint64_t h = hash_str(v.s0, 0)
    h = hash_str(v.s1, h)
    return hash_int(v.i0, h)


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
    t.slots = NULL


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
    cdef KeyVal other
    if v.has_null:
        return -1
    while base[pos].row >= 0:
        if base[pos].tag == tag:
            other = key_at(k, base[pos].row)
            if key_eq(&other, v):
                return base[pos].row
        pos = (pos + 1) & t.part_mask
    return -1


cdef inline int32_t table_insert(HashTable* t, const KeySpec* k, const KeyVal* v, uint64_t h,
                                 int32_t row) noexcept nogil:
    """Insert `row` unless its key is there; return the first row with that key."""
    cdef Slot* base = t.slots + (<uint64_t>partition_of(t, h) * (t.part_mask + 1))
    cdef uint64_t pos = h & t.part_mask
    cdef uint32_t tag = <uint32_t>(h >> 32)
    cdef KeyVal other
    while base[pos].row >= 0:
        if base[pos].tag == tag:
            other = key_at(k, base[pos].row)
            if key_eq(&other, v):
                return base[pos].row
        pos = (pos + 1) & t.part_mask
    base[pos].tag = tag
    base[pos].row = row
    return row


cdef inline void hash_rows(const KeySpec* k, int64_t n, uint64_t* hashes, int32_t* first,
                           int threads) noexcept nogil:
    """Hash every row; first[row] = -1 for a key with a null part, else 0 (to be built)."""
    cdef int64_t row
    cdef KeyVal v
    for row in prange(n, schedule="static", num_threads=threads):
        v = key_at(k, row)
        hashes[row] = key_hash(&v)
        first[row] = -1 if v.has_null else 0


cdef inline void build_rows(HashTable* t, const KeySpec* k, int64_t n, const uint64_t* hashes,
                            int32_t* first, int threads) noexcept nogil:
    """Insert rows 0..n-1 in order; first[row] = the first row with the same key (-1 if null).

    Each thread owns one partition and scans every hash, so insertion order (and so the
    "first row wins" answer) is the same as a serial build.
    """
    cdef int64_t parts = 1 << t.part_bits
    cdef int64_t p, row, ahead
    cdef KeyVal v
    for p in prange(parts, schedule="static", num_threads=threads):
        for row in range(n):
            ahead = row + PREFETCH_AHEAD
            if ahead < n and partition_of(t, hashes[ahead]) == p:
                mc_prefetch(slot_of(t, hashes[ahead]))
            if first[row] < 0 or partition_of(t, hashes[row]) != p:
                continue
            v = key_at(k, row)
            first[row] = table_insert(t, k, &v, hashes[row], <int32_t>row)


cdef inline int table_build(HashTable* t, const KeySpec* k, int64_t n, uint64_t* hashes,
                            int32_t* first, int part_bits, int threads) noexcept nogil:
    """Hash and insert every row of the table `k` describes; see build_rows. -1 if no memory."""
    if table_init(t, n, part_bits) != 0:
        return -1
    hash_rows(k, n, hashes, first, threads)
    build_rows(t, k, n, hashes, first, threads)
    return 0


cdef inline void prefetch_candidate(const HashTable* t, const KeySpec* build,
                                    uint64_t h) noexcept nogil:
    """Prefetch the key strings of the row in h's home slot, if its tag matches."""
    cdef Slot* home = slot_of(t, h)
    if home.row >= 0 and home.tag == <uint32_t>(h >> 32):
        prefetch_str(build.s0, home.row)
        if build.s1 != NULL:
            prefetch_str(build.s1, home.row)


cdef inline void hash_and_prefetch(const HashTable* t, const KeySpec* probe, int64_t row,
                                   uint64_t* h) noexcept nogil:
    cdef KeyVal v = key_at(probe, row)
    h[0] = key_hash(&v)
    mc_prefetch(slot_of(t, h[0]))


cdef inline void probe_block(const HashTable* t, const KeySpec* build, const KeySpec* probe,
                             int64_t start, int64_t end, int32_t* found, uint64_t* hs) noexcept nogil:
    """found[] for rows start..end-1, software-pipelined: a row's slot is asked for
    2 * PROBE_DISTANCE rows before its lookup, the candidate's key PROBE_DISTANCE rows before,
    so those misses overlap with the lookups in between. hs holds the block's hashes."""
    cdef int64_t row
    cdef KeyVal v
    for row in range(start, min(start + 2 * PROBE_DISTANCE, end)):
        hash_and_prefetch(t, probe, row, hs + (row - start))
    for row in range(start, min(start + PROBE_DISTANCE, end)):
        prefetch_candidate(t, build, hs[row - start])
    for row in range(start, end):
        if row + 2 * PROBE_DISTANCE < end:
            hash_and_prefetch(t, probe, row + 2 * PROBE_DISTANCE,
                              hs + (row + 2 * PROBE_DISTANCE - start))
        if row + PROBE_DISTANCE < end:
            prefetch_candidate(t, build, hs[row + PROBE_DISTANCE - start])
        v = key_at(probe, row)
        found[row] = table_find(t, build, &v, hs[row - start])


cdef inline void probe_rows(const HashTable* t, const KeySpec* build, const KeySpec* probe,
                            int64_t n, int32_t* found, int threads) noexcept nogil:
    """found[row] = first build row whose key equals probe row's key, else -1 (in parallel)."""
    cdef int64_t nblocks = (n + PROBE_BLOCK - 1) // PROBE_BLOCK
    cdef int64_t b
    cdef uint64_t* hs
    with parallel(num_threads=threads):
        hs = <uint64_t*>malloc(PROBE_BLOCK * sizeof(uint64_t))
        for b in prange(nblocks, schedule="dynamic"):
            probe_block(t, build, probe, b * PROBE_BLOCK, min((b + 1) * PROBE_BLOCK, n), found,
                        hs)
        free(hs)
