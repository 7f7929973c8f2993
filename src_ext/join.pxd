# cython: language_level=3
"""Linking (docs/internals.md "Linking"): every document row to the first order row of its key.

Orders are built into a hash table once; payments, order lines and inventories probe it in
parallel. Counts and line lists are scattered by order, each thread owning the orders of one
residue class so no two threads write the same counter and row order is kept.
"""

from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc

from arrow_access cimport col_is_null
from context cimport (Ctx, I_EBP_CODE, I_LOGISTICS_CODE, I_LOGISTICS_NO, I_ORDER_NO,
                      L_EBP_CODE, L_ORDER_NO, O_EBP_CODE, O_ORDER_NO, P_EBP_CODE, P_ORDER_NO,
                      W_EBP_CODE, W_LOGISTICS_CODE, W_LOGISTICS_NO, W_ORDER_NO)
from hashtable cimport (HashTable, KeySpec, KeyVal, key_at, key_hash, probe_rows, table_build,
                        table_free, table_init, table_insert)

cdef extern from "mc_int128.h":
    void mc_prefetch "MC_PREFETCH"(const void* p) noexcept nogil
    void mc_prefetch_w "MC_PREFETCH_W"(const void* p) noexcept nogil


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


cdef enum:
    SCATTER_AHEAD = 16  # document rows between a counter's prefetch and its update


cdef inline bint owns(int32_t f, int64_t t, int threads) noexcept nogil:
    """Thread t updates the counters of the orders f with f % threads == t: no two threads
    write one counter, and each counter sees its documents in row order."""
    return f >= 0 and f % threads == t


cdef inline void scan_by_order(const int32_t* doc_order, int64_t n, int32_t* count,
                               int32_t* first, int32_t* last, int threads) noexcept nogil:
    """Per order f, over the documents linked to it: count[f] of them, first[f] (starts at -1)
    and last[f] of them. Any of the three may be NULL."""
    cdef int64_t t
    if threads == 1:  # (entering a parallel region costs more than a micro-batch's scan)
        scan_residue(doc_order, n, count, first, last, 0, 1)
        return
    for t in prange(threads, schedule="static", num_threads=threads):
        scan_residue(doc_order, n, count, first, last, t, threads)


cdef inline void scan_residue(const int32_t* doc_order, int64_t n, int32_t* count,
                              int32_t* first, int32_t* last, int64_t t, int threads) noexcept nogil:
    """scan_by_order for the orders thread t owns."""
    cdef int64_t j
    cdef int32_t f, ahead
    for j in range(n):
        if j + SCATTER_AHEAD < n:
            ahead = doc_order[j + SCATTER_AHEAD]
            if owns(ahead, t, threads):
                if count != NULL:
                    mc_prefetch_w(count + ahead)
                if first != NULL:
                    mc_prefetch_w(first + ahead)
                if last != NULL:
                    mc_prefetch_w(last + ahead)
        f = doc_order[j]
        if owns(f, t, threads):
            if count != NULL:
                count[f] += 1
            if first != NULL and first[f] < 0:
                first[f] = <int32_t>j
            if last != NULL:
                last[f] = <int32_t>j


cdef inline void link_payments(Ctx* x, const HashTable* orders, const KeySpec* okey) noexcept nogil:
    cdef KeySpec k = pair_key(x, P_EBP_CODE, P_ORDER_NO)
    probe_rows(orders, okey, &k, x.n_payments, x.pay_order, x.threads)
    scan_by_order(x.pay_order, x.n_payments, x.pay_count, NULL, x.pay_last, x.threads)


cdef inline void link_inventories(Ctx* x, const HashTable* orders, const KeySpec* okey) noexcept nogil:
    cdef KeySpec k = pair_key(x, I_EBP_CODE, I_ORDER_NO)
    probe_rows(orders, okey, &k, x.n_inventories, x.inv_order, x.threads)
    # The first inventory of an order wins.
    scan_by_order(x.inv_order, x.n_inventories, NULL, x.inv_of, NULL, x.threads)


cdef inline int group_rows(const int32_t* group_of, int64_t n, int64_t n_groups,
                           int64_t* start, int32_t* rows, int threads) noexcept nogil:
    """CSR grouping: rows[start[g]:start[g+1]] = the rows r with group_of[r] == g, ascending.

    Rows with a negative group are left out. -1 if out of memory.
    """
    cdef int32_t* counts = <int32_t*>calloc(<size_t>(n_groups + 1), sizeof(int32_t))
    cdef int64_t g, t, total = 0
    if counts == NULL:
        return -1
    scan_by_order(group_of, n, counts, NULL, NULL, threads)
    for g in range(n_groups):
        start[g] = total
        total += counts[g]
        counts[g] = 0
    start[n_groups] = total
    if threads == 1:
        place_residue(group_of, n, start, counts, rows, 0, 1)
    else:
        for t in prange(threads, schedule="static", num_threads=threads):
            place_residue(group_of, n, start, counts, rows, t, threads)
    free(counts)
    return 0


cdef inline void place_residue(const int32_t* group_of, int64_t n, const int64_t* start,
                               int32_t* counts, int32_t* rows, int64_t t,
                               int threads) noexcept nogil:
    """group_rows' placing of the rows of the groups thread t owns."""
    cdef int64_t j
    cdef int32_t f, ahead
    for j in range(n):
        if j + SCATTER_AHEAD < n:
            ahead = group_of[j + SCATTER_AHEAD]
            if owns(ahead, t, threads):
                mc_prefetch(start + ahead)
                mc_prefetch_w(counts + ahead)
        f = group_of[j]
        if owns(f, t, threads):
            rows[start[f] + counts[f]] = <int32_t>j
            counts[f] += 1


cdef inline int link_lines(Ctx* x, const HashTable* orders, const KeySpec* okey) noexcept nogil:
    """item_order, and line_start/line_rows: each order's lines in row order. -1 if no memory."""
    cdef KeySpec k = pair_key(x, L_EBP_CODE, L_ORDER_NO)
    probe_rows(orders, okey, &k, x.n_items, x.item_order, x.threads)
    return group_rows(x.item_order, x.n_items, x.n_orders, x.line_start, x.line_rows, x.threads)


cdef inline bint waybill_names_order(Ctx* x, int64_t j) noexcept nogil:
    """A waybill with order_no or ebp_code links by its own key only (internals, Linking)."""
    return not (col_is_null(x.cols + W_ORDER_NO, j) and col_is_null(x.cols + W_EBP_CODE, j))


cdef inline int link_waybills(Ctx* x, const HashTable* orders, const KeySpec* okey) noexcept nogil:
    """wb_count / wb_last per order and wb_linked per waybill. -1 if out of memory."""
    cdef KeySpec k = pair_key(x, W_EBP_CODE, W_ORDER_NO)
    cdef int32_t* own = <int32_t*>malloc(<size_t>(x.n_waybills + 1) * sizeof(int32_t))
    cdef int64_t j
    cdef int rc = 0
    if own == NULL:
        return -1
    # A waybill naming an order (either key part non-null) links by its own key only; a null
    # part matches nothing, so own[j] >= 0 only for such waybills.
    probe_rows(orders, okey, &k, x.n_waybills, own, x.threads)
    scan_by_order(own, x.n_waybills, x.wb_count, NULL, x.wb_last, x.threads)
    for j in prange(x.n_waybills, schedule="static", num_threads=x.threads):
        x.wb_linked[j] = own[j] >= 0
    free(own)
    if x.p.inventory_rules and x.n_inventories > 0:
        rc = link_unnamed_waybills(x)
    return rc


cdef inline int link_unnamed_waybills(Ctx* x) noexcept nogil:
    """A waybill naming no order links to the order of every inventory with its logistics key,
    so it may count for several orders (and twice for one order named by two such inventories).

    Few waybills name no order: their keys go in a small table (it stays in cache), which every
    inventory probes in parallel. Waybills sharing a key form a group (led by its first row)
    that links to the same orders: an order's count grows by the group's size and its last
    waybill is the larger of its own and the group's last. -1 if out of memory.
    """
    cdef KeySpec wkey = pair_key(x, W_LOGISTICS_CODE, W_LOGISTICS_NO)
    cdef KeySpec ikey = pair_key(x, I_LOGISTICS_CODE, I_LOGISTICS_NO)
    cdef HashTable groups
    cdef int32_t* leader = <int32_t*>malloc(<size_t>(x.n_waybills + 1) * sizeof(int32_t))
    cdef int32_t* size = <int32_t*>malloc(<size_t>(x.n_waybills + 1) * sizeof(int32_t))
    cdef int32_t* group_last = <int32_t*>malloc(<size_t>(x.n_waybills + 1) * sizeof(int32_t))
    cdef uint8_t* linked = <uint8_t*>malloc(<size_t>(x.n_waybills + 1))
    cdef int32_t* found = <int32_t*>malloc(<size_t>(x.n_inventories + 1) * sizeof(int32_t))
    cdef int64_t j, n_unnamed = 0
    cdef int rc = 0
    groups.slots = NULL
    groups.keys = NULL
    if leader == NULL or size == NULL or group_last == NULL or linked == NULL or found == NULL:
        rc = -1
    if rc == 0:
        for j in range(x.n_waybills):
            n_unnamed += not waybill_names_order(x, j)
        if n_unnamed > 0:
            rc = table_init(&groups, n_unnamed, 0)
    if rc == 0 and n_unnamed > 0:
        group_unnamed_waybills(x, &groups, &wkey, leader, size, group_last, linked)
        probe_rows(&groups, &wkey, &ikey, x.n_inventories, found, x.threads)
        add_group_links(x, found, size, group_last, linked)
        for j in range(x.n_waybills):
            if leader[j] >= 0:
                x.wb_linked[j] = linked[leader[j]]
    table_free(&groups)
    free(leader)
    free(size)
    free(group_last)
    free(linked)
    free(found)
    return rc


cdef inline void group_unnamed_waybills(Ctx* x, HashTable* groups, const KeySpec* wkey,
                                        int32_t* leader, int32_t* size, int32_t* group_last,
                                        uint8_t* linked) noexcept nogil:
    """leader[j] = the first unnamed waybill with j's logistics key (-1: named, or a null key
    part); size, group_last and linked are set at leader rows only."""
    cdef int64_t j
    cdef int32_t first
    cdef KeyVal v
    for j in range(x.n_waybills):
        leader[j] = -1
        if waybill_names_order(x, j):
            continue
        v = key_at(wkey, j)
        if v.has_null:
            continue
        first = table_insert(groups, wkey, &v, key_hash(&v), <int32_t>j)
        leader[j] = first
        if first == j:
            size[j] = 0
            linked[j] = 0
        size[first] += 1
        group_last[first] = <int32_t>j


cdef inline void add_group_links(Ctx* x, const int32_t* found, const int32_t* size,
                                 const int32_t* group_last, uint8_t* linked) noexcept nogil:
    """Every inventory g whose key leads a group (found[g]) links that group to its order."""
    cdef int64_t t, g
    cdef int32_t f, w
    for t in prange(x.threads, schedule="static", num_threads=x.threads):
        for g in range(x.n_inventories):
            w = found[g]
            f = x.inv_order[g] if w >= 0 else -1
            if f < 0:
                continue
            if t == 0:
                linked[w] = 1
            if owns(f, t, x.threads):
                x.wb_count[f] += size[w]
                if group_last[w] > x.wb_last[f]:
                    x.wb_last[f] = group_last[w]
