# cython: language_level=3
"""The annual-limit walk of SPEC §3.1, after every other rule has been decided.

Orders are grouped by buyer through a hash table (no global sort); each buyer's few orders are
sorted by (year, app_time, ebp_code, order_no, row) and walked; buyers run in parallel.
"""

from cython.parallel cimport prange
from libc.stdint cimport INT64_MIN, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc

from arrow_access cimport StrRef, col_i64, col_str, prefetch_str, prefetch_value, str_cmp
from context cimport (Ctx, O_APP_TIME, O_APP_YEAR, O_BUYER_ID_NUMBER, O_EBP_CODE, O_ORDER_NO,
                      Q_BUYER_ID_NUMBER, Q_USED, Q_YEAR)
from hashtable cimport CACHED_ROWS, HashTable, KeySpec, KeyVal, key_hash, table_find

cdef extern from "mc_int128.h":
    void mc_prefetch "MC_PREFETCH"(const void* p) noexcept nogil
    void mc_prefetch_w "MC_PREFETCH_W"(const void* p) noexcept nogil

cdef enum:
    ANNUAL_RULE = 19
    INSERTION_SORT_MAX = 16
    WALK_AHEAD = 16  # order rows between prefetching a buyer's orders and walking them

ctypedef struct Walk:
    # Inputs.
    const int32_t* buyer_first   # first order row of each order's buyer
    const int64_t* group_start   # CSR over buyer_first (indexed by first row)
    const int32_t* group_rows
    const HashTable* ledger
    const KeySpec* ledger_key
    int64_t annual_limit
    uint64_t skip_mask           # reject rules other than the annual limit
    # Outputs: per order row, and one ledger row per (buyer, year) at its run's CSR position.
    uint8_t* annual_fails
    int32_t* ledger_buyer_row    # -1: no ledger row at this position
    int64_t* ledger_year
    int64_t* ledger_used
    uint8_t* ledger_matched      # per input ledger row: some order had its buyer and year


cdef inline int walk_cmp(Ctx* x, int32_t a, int32_t b) noexcept nogil:
    """Walk order within one buyer: year, app_time, ebp_code, order_no, row."""
    cdef int64_t u = col_i64(x.cols + O_APP_YEAR, a, 0), v = col_i64(x.cols + O_APP_YEAR, b, 0)
    cdef int r
    if u != v:
        return -1 if u < v else 1
    u = col_i64(x.cols + O_APP_TIME, a, 0)
    v = col_i64(x.cols + O_APP_TIME, b, 0)
    if u != v:
        return -1 if u < v else 1
    r = str_cmp(col_str(x.cols + O_EBP_CODE, a), col_str(x.cols + O_EBP_CODE, b))
    if r != 0:
        return r
    r = str_cmp(col_str(x.cols + O_ORDER_NO, a), col_str(x.cols + O_ORDER_NO, b))
    if r != 0:
        return r
    return -1 if a < b else (1 if a > b else 0)


cdef inline void insertion_sort(Ctx* x, int32_t* rows, int64_t n) noexcept nogil:
    cdef int64_t i, j
    cdef int32_t r
    for i in range(1, n):
        r = rows[i]
        j = i - 1
        while j >= 0 and walk_cmp(x, rows[j], r) > 0:
            rows[j + 1] = rows[j]
            j -= 1
        rows[j + 1] = r


cdef inline void merge_sort(Ctx* x, int32_t* rows, int32_t* tmp, int64_t n) noexcept nogil:
    """Stable sort of rows by walk_cmp (tmp holds n entries)."""
    cdef int64_t mid, i, j, k
    if n <= INSERTION_SORT_MAX:
        insertion_sort(x, rows, n)
        return
    mid = n // 2
    merge_sort(x, rows, tmp, mid)
    merge_sort(x, rows + mid, tmp, n - mid)
    i = 0
    j = mid
    k = 0
    while i < mid and j < n:
        if walk_cmp(x, rows[j], rows[i]) < 0:
            tmp[k] = rows[j]
            j += 1
        else:
            tmp[k] = rows[i]
            i += 1
        k += 1
    while i < mid:
        tmp[k] = rows[i]
        i += 1
        k += 1
    while j < n:
        tmp[k] = rows[j]
        j += 1
        k += 1
    for i in range(n):
        rows[i] = tmp[i]


cdef inline int64_t starting_used(Ctx* x, Walk* w, int32_t buyer_row, int64_t year) noexcept nogil:
    """The ledger's `used` for this buyer and year (0 when absent); marks the ledger row."""
    cdef KeyVal v
    cdef int32_t q
    if w.ledger == NULL:
        return 0
    v.s0 = col_str(x.cols + O_BUYER_ID_NUMBER, buyer_row)
    v.s1.ptr = NULL
    v.s1.len = 0
    v.i0 = year
    v.has_null = v.s0.len < 0
    q = table_find(w.ledger, w.ledger_key, &v, key_hash(&v))
    if q < 0:
        return 0
    w.ledger_matched[q] = 1
    return col_i64(x.cols + Q_USED, q, 0)


cdef inline void walk_buyer(Ctx* x, Walk* w, int32_t* rows, int64_t n, int64_t pos) noexcept nogil:
    """Walk one buyer's rows (sorted in walk order); ledger rows go at pos, pos+1, ..."""
    cdef int64_t k = 0, year, spent, lv
    cdef int32_t r
    while k < n:
        year = col_i64(x.cols + O_APP_YEAR, rows[k], 0)
        spent = starting_used(x, w, rows[k], year)
        while k < n and col_i64(x.cols + O_APP_YEAR, rows[k], 0) == year:
            r = rows[k]
            k += 1
            if x.mask[r] & w.skip_mask:
                continue
            x.annual_spent[r] = spent
            lv = x.limit_value[r]
            if spent + lv > w.annual_limit:
                w.annual_fails[r] = 1
            else:
                spent += lv
        w.ledger_buyer_row[pos] = rows[0]
        w.ledger_year[pos] = year
        w.ledger_used[pos] = spent
        pos += 1


cdef inline void prefetch_buyer(Ctx* x, Walk* w, int64_t i) noexcept nogil:
    """If order row i leads a buyer, ask for what sorting and walking that buyer's orders read:
    they lie anywhere in the orders table."""
    cdef int64_t k
    cdef int32_t r
    if w.buyer_first[i] != i:
        return
    for k in range(w.group_start[i], w.group_start[i + 1]):
        r = w.group_rows[k]
        prefetch_value(x.cols + O_APP_YEAR, r)
        prefetch_value(x.cols + O_APP_TIME, r)
        prefetch_str(x.cols + O_BUYER_ID_NUMBER, r)
        mc_prefetch(x.mask + r)
        mc_prefetch(x.limit_value + r)
        mc_prefetch_w(x.annual_spent + r)
        mc_prefetch_w(w.annual_fails + r)


cdef inline int annual_walk(Ctx* x, Walk* w) noexcept nogil:
    """Walk every buyer (in parallel); -1 if out of memory."""
    cdef int64_t i, n, start
    cdef int32_t* rows
    cdef int32_t* tmp
    cdef int failed = 0
    cdef int64_t prefetched = x.n_orders if x.n_orders > CACHED_ROWS else 0  # (see CACHED_ROWS)
    for i in prange(x.n_orders, schedule="dynamic", chunksize=4096, num_threads=x.threads):
        if i + WALK_AHEAD < prefetched:
            prefetch_buyer(x, w, i + WALK_AHEAD)
        if w.buyer_first[i] != i:
            continue
        start = w.group_start[i]
        n = w.group_start[i + 1] - start
        rows = <int32_t*>w.group_rows + start   # each buyer owns its CSR slice
        if n <= INSERTION_SORT_MAX:
            insertion_sort(x, rows, n)
        else:
            tmp = <int32_t*>malloc(<size_t>n * sizeof(int32_t))
            if tmp == NULL:
                failed += 1
                continue
            merge_sort(x, rows, tmp, n)
            free(tmp)
        walk_buyer(x, w, rows, n, start)
    return -1 if failed else 0
