# cython: language_level=3
"""Linking (docs/internals.md "Linking"): every document row to the first order row of its key.

Orders are built into a hash table once; payments, order lines and inventories probe it in
parallel. Counts and line lists are scattered by order, each thread owning the orders of one
residue class so no two threads write the same counter and row order is kept.
"""

from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport calloc, free, malloc

from arrow_access cimport col_is_null
from context cimport (Ctx, I_EBP_CODE, I_LOGISTICS_CODE, I_LOGISTICS_NO, I_ORDER_NO,
                      L_EBP_CODE, L_ORDER_NO, O_EBP_CODE, O_ORDER_NO, P_EBP_CODE, P_ORDER_NO,
                      W_EBP_CODE, W_LOGISTICS_CODE, W_LOGISTICS_NO, W_ORDER_NO)
from hashtable cimport HashTable, KeySpec, KeyVal, key_at, key_hash, probe_rows, table_build, table_find, table_free


cdef inline KeySpec pair_key(Ctx* x, int first, int second) noexcept nogil:
    cdef KeySpec k
    k.s0 = x.cols + first
    k.s1 = x.cols + second
    k.i0 = NULL
    return k


cdef inline int link_orders(Ctx* x, HashTable* orders, KeySpec* okey) noexcept nogil:
    """Build the order-key table; order_first and copies. -1 if out of memory."""
    cdef uint64_t* hashes = <uint64_t*>malloc(<size_t>(x.n_orders + 1) * sizeof(uint64_t))
    cdef int64_t i
    cdef int rc
    if hashes == NULL:
        return -1
    okey[0] = pair_key(x, O_EBP_CODE, O_ORDER_NO)
    rc = table_build(orders, okey, x.n_orders, hashes, x.order_first, x.part_bits, x.threads)
    free(hashes)
    if rc != 0:
        return -1
    for i in range(x.n_orders):
        if x.order_first[i] < 0:  # a null key part: a key of its own that nothing links to
            x.order_first[i] = <int32_t>i
        x.copies[x.order_first[i]] += 1
    return 0


cdef inline void count_by_order(const int32_t* doc_order, int64_t n, int32_t* count,
                                int32_t* last, int threads) noexcept nogil:
    """count[f] = documents linked to order f, last[f] = the last of them."""
    cdef int64_t t, j
    cdef int32_t f
    for t in prange(threads, schedule="static", num_threads=threads):
        for j in range(n):
            f = doc_order[j]
            if f >= 0 and f % threads == t:
                count[f] += 1
                last[f] = <int32_t>j


cdef inline void link_payments(Ctx* x, const HashTable* orders, const KeySpec* okey) noexcept nogil:
    cdef KeySpec k = pair_key(x, P_EBP_CODE, P_ORDER_NO)
    probe_rows(orders, okey, &k, x.n_payments, x.pay_order, x.threads)
    count_by_order(x.pay_order, x.n_payments, x.pay_count, x.pay_last, x.threads)


cdef inline void link_inventories(Ctx* x, const HashTable* orders, const KeySpec* okey) noexcept nogil:
    cdef KeySpec k = pair_key(x, I_EBP_CODE, I_ORDER_NO)
    cdef int64_t j
    cdef int32_t f
    probe_rows(orders, okey, &k, x.n_inventories, x.inv_order, x.threads)
    for j in range(x.n_inventories - 1, -1, -1):  # backwards: the first inventory wins
        f = x.inv_order[j]
        if f >= 0:
            x.inv_of[f] = <int32_t>j


cdef inline int group_rows(const int32_t* group_of, int64_t n, int64_t n_groups,
                           int64_t* start, int32_t* rows, int threads) noexcept nogil:
    """CSR grouping: rows[start[g]:start[g+1]] = the rows r with group_of[r] == g, ascending.

    Rows with a negative group are left out. -1 if out of memory.
    """
    cdef int32_t* counts = <int32_t*>calloc(<size_t>(n_groups + 1), sizeof(int32_t))
    cdef int32_t* unused = <int32_t*>malloc(<size_t>(n_groups + 1) * sizeof(int32_t))
    cdef int64_t g, j, t, total = 0
    cdef int32_t f
    if counts == NULL or unused == NULL:
        free(counts)
        free(unused)
        return -1
    count_by_order(group_of, n, counts, unused, threads)
    for g in range(n_groups):
        start[g] = total
        total += counts[g]
        counts[g] = 0
    start[n_groups] = total
    for t in prange(threads, schedule="static", num_threads=threads):
        for j in range(n):
            f = group_of[j]
            if f >= 0 and f % threads == t:
                rows[start[f] + counts[f]] = <int32_t>j
                counts[f] += 1
    free(counts)
    free(unused)
    return 0


cdef inline int link_lines(Ctx* x, const HashTable* orders, const KeySpec* okey) noexcept nogil:
    """item_order, and line_start/line_rows: each order's lines in row order. -1 if no memory."""
    cdef KeySpec k = pair_key(x, L_EBP_CODE, L_ORDER_NO)
    probe_rows(orders, okey, &k, x.n_items, x.item_order, x.threads)
    return group_rows(x.item_order, x.n_items, x.n_orders, x.line_start, x.line_rows, x.threads)


cdef inline bint waybill_names_order(Ctx* x, int64_t j) noexcept nogil:
    """A waybill with order_no or ebp_code links by its own key only (internals, Linking)."""
    return not (col_is_null(x.cols + W_ORDER_NO, j) and col_is_null(x.cols + W_EBP_CODE, j))


cdef inline int link_waybills(Ctx* x, const HashTable* orders, const KeySpec* okey) noexcept nogil:
    """wb_count / wb_last per order and wb_linked per waybill. -1 if out of memory.

    A waybill naming no order links to the order of every inventory with its logistics key,
    so it may count for several orders.
    """
    cdef KeySpec k = pair_key(x, W_EBP_CODE, W_ORDER_NO)
    cdef KeySpec inv_key = pair_key(x, I_LOGISTICS_CODE, I_LOGISTICS_NO)
    cdef KeySpec wb_log_key = pair_key(x, W_LOGISTICS_CODE, W_LOGISTICS_NO)
    cdef HashTable inv_table
    cdef int32_t* own = <int32_t*>malloc(<size_t>(x.n_waybills + 1) * sizeof(int32_t))
    cdef int32_t* via = NULL       # per waybill: first inventory with its logistics key
    cdef int32_t* inv_first = NULL
    cdef int32_t* inv_next = NULL
    cdef uint64_t* hashes = NULL
    cdef int64_t j, t, n_inv = x.n_inventories if x.p.inventory_rules else 0
    cdef int32_t f, g
    cdef KeyVal v
    if own == NULL:
        return -1
    probe_rows(orders, okey, &k, x.n_waybills, own, x.threads)
    if n_inv > 0:
        via = <int32_t*>malloc(<size_t>(x.n_waybills + 1) * sizeof(int32_t))
        inv_first = <int32_t*>malloc(<size_t>n_inv * sizeof(int32_t))
        inv_next = <int32_t*>malloc(<size_t>n_inv * sizeof(int32_t))
        hashes = <uint64_t*>malloc(<size_t>n_inv * sizeof(uint64_t))
        if via == NULL or inv_first == NULL or inv_next == NULL or hashes == NULL or \
                table_build(&inv_table, &inv_key, n_inv, hashes, inv_first, 0, 1) != 0:
            free(own)
            free(via)
            free(inv_first)
            free(inv_next)
            free(hashes)
            return -1
        # Chain the inventories of each logistics key in row order, starting at its first row.
        for j in range(n_inv):
            inv_next[j] = -1
        for j in range(n_inv - 1, -1, -1):
            f = inv_first[j]
            if f >= 0 and f != j:
                inv_next[j] = inv_next[f]
                inv_next[f] = <int32_t>j
        for j in range(x.n_waybills):
            via[j] = -1
            if not waybill_names_order(x, j):
                v = key_at(&wb_log_key, j)
                via[j] = table_find(&inv_table, &inv_key, &v, key_hash(&v))
        table_free(&inv_table)
    for t in prange(x.threads, schedule="static", num_threads=x.threads):
        for j in range(x.n_waybills):
            if via != NULL and via[j] >= 0:
                g = via[j]
                while g >= 0:
                    f = x.inv_order[g]
                    if f >= 0:
                        if t == 0:
                            x.wb_linked[j] = 1
                        if f % x.threads == t:
                            x.wb_count[f] += 1
                            x.wb_last[f] = <int32_t>j
                    g = inv_next[g]
            elif waybill_names_order(x, j):
                f = own[j]
                if f >= 0:
                    if t == 0:
                        x.wb_linked[j] = 1
                    if f % x.threads == t:
                        x.wb_count[f] += 1
                        x.wb_last[f] = <int32_t>j
    free(own)
    free(via)
    free(inv_first)
    free(inv_next)
    free(hashes)
    return 0
