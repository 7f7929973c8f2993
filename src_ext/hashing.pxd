# cython: language_level=3
"""64-bit hashing of keys made of strings and integers (wyhash-style multiply-mix).

Short keys (order numbers, codes) cost a few multiplies; the top 32 bits become the slot tag,
the low bits the slot position, so the two must come from a well-mixed value.
"""

from libc.stdint cimport int64_t, uint32_t, uint64_t, uint8_t
from libc.string cimport memcpy

from arrow_access cimport StrRef

cdef extern from "mc_int128.h":
    uint64_t mc_mum(uint64_t a, uint64_t b) noexcept nogil
    # Odd 64-bit constants with balanced bits; HASH_NULL stands for a null part of a key.
    const uint64_t HASH_K0 "MC_K0"
    const uint64_t HASH_K1 "MC_K1"
    const uint64_t HASH_K2 "MC_K2"
    const uint64_t HASH_NULL "MC_KNULL"


cdef inline uint64_t _read64(const char* p) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return v


cdef inline uint64_t _read32(const char* p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef inline uint64_t hash_bytes(const char* p, int64_t n, uint64_t seed) noexcept nogil:
    """Hash of n bytes at p, chained from `seed`."""
    cdef uint64_t a, b
    cdef int64_t i = n
    seed ^= mc_mum(seed ^ <uint64_t>HASH_K0, <uint64_t>HASH_K1)
    if n <= 16:
        if n >= 4:
            a = (_read32(p) << 32) | _read32(p + ((n >> 3) << 2))
            b = (_read32(p + n - 4) << 32) | _read32(p + n - 4 - ((n >> 3) << 2))
        elif n > 0:
            a = ((<uint64_t>(<const uint8_t*>p)[0]) << 16) | \
                ((<uint64_t>(<const uint8_t*>p)[n >> 1]) << 8) | (<const uint8_t*>p)[n - 1]
            b = 0
        else:
            a = 0
            b = 0
    else:
        while i > 16:
            seed = mc_mum(_read64(p) ^ <uint64_t>HASH_K1, _read64(p + 8) ^ seed)
            p += 16
            i -= 16
        a = _read64(p + i - 16)
        b = _read64(p + i - 8)
    a ^= <uint64_t>HASH_K1
    b ^= seed
    a = mc_mum(a, b)
    return mc_mum(a ^ <uint64_t>HASH_K0 ^ <uint64_t>n, b ^ <uint64_t>HASH_K1)


cdef inline uint64_t hash_str(StrRef s, uint64_t seed) noexcept nogil:
    """Hash of a string value, null distinct from every string (including the empty one)."""
    if s.len < 0:
        return mc_mum(seed ^ <uint64_t>HASH_NULL, <uint64_t>HASH_K2)
    return hash_bytes(s.ptr, s.len, seed)


cdef inline uint64_t hash_int(int64_t v, uint64_t seed) noexcept nogil:
    return mc_mum(<uint64_t>v ^ <uint64_t>HASH_K2, seed ^ <uint64_t>HASH_K0)
