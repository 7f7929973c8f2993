# cython: language_level=3
"""Rule evaluation for one order row (SPEC §3, docs/internals.md): document, party and line
rules, and the tax of §3.2. Called twice per order that has subject rows: once to decide the
mask and count the subject rows, once (with an output position) to write them.
"""

cimport cython
from libc.math cimport isfinite, rint
from libc.stdint cimport INT64_MIN, int8_t, int32_t, int64_t, uint8_t, uint64_t

from arrow_access cimport (Col, StrRef, col_f64, col_i64, col_is_null, col_str, mc_bytes_eq,
                           prefetch_str, prefetch_str_data, prefetch_value, str_eq,
                           str_eq_nullsafe)
from china_dates cimport days_in_month
from context cimport *
from hashing cimport hash_str
from hashtable cimport KeyVal, key_hash, key_hash_after, table_find

cdef extern from "mc_int128.h":
    int mc_product_differs(int64_t a, int64_t b, int64_t c, int64_t scale, int64_t limit) noexcept nogil

cdef enum:
    MONEY_SCALE = 10000
    LINE_TOLERANCE = 1000000      # 0.01 CNY in units of qty x price
    ROLE_EBP = 1
    ROLE_EBC = 2
    ROLE_PAY = 4
    ROLE_LOGISTICS = 8
    ROLE_AGENT = 16
    PARTY_EBP = 0
    PARTY_EBC = 1
    PARTY_PAY = 2
    PARTY_LOGISTICS = 3
    PARTY_AGENT = 4


cdef inline uint64_t bit(int rule) noexcept nogil:
    return (<uint64_t>1) << rule


cdef inline int64_t abs64(int64_t v) noexcept nogil:
    return -v if v < 0 else v


# ---- text comparisons -------------------------------------------------------------------

cdef inline bint texts_differ(StrRef a, StrRef b) noexcept nogil:
    """Normalised texts differ; null equals only null (Polars `ne_missing`)."""
    return not str_eq_nullsafe(a, b)


cdef inline bint named_and_differs(StrRef order_value, StrRef document_value) noexcept nogil:
    return order_value.len >= 0 and texts_differ(order_value, document_value)


cdef inline bint phones_differ(StrRef a, StrRef b) noexcept nogil:
    """Both phones present and their ASCII-digit strings differ."""
    cdef int64_t i = 0, j = 0
    if a.len < 0 or b.len < 0:
        return False
    while True:
        while i < a.len and not (b'0' <= a.ptr[i] <= b'9'):
            i += 1
        while j < b.len and not (b'0' <= b.ptr[j] <= b'9'):
            j += 1
        if i == a.len or j == b.len:
            return (i == a.len) != (j == b.len)
        if a.ptr[i] != b.ptr[j]:
            return True
        i += 1
        j += 1


cdef inline bint currency_differs(StrRef a, StrRef b) noexcept nogil:
    return texts_differ(a, b)


# ---- GB 11643 resident ID ---------------------------------------------------------------

cdef inline bint resident_id_valid(StrRef s, int64_t app_ymd) noexcept nogil:
    """17 digits + GB 11643 check character, and a real birth date not after the order's day."""
    cdef int i, total = 0
    cdef int64_t ymd = 0, year, month, day
    cdef const int* weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    cdef const char* checks = b"10X98765432"
    if s.len != 18:
        return False
    for i in range(17):
        if not (b'0' <= s.ptr[i] <= b'9'):
            return False
        total += (s.ptr[i] - 48) * weights[i]
    if s.ptr[17] != checks[total % 11]:
        return False
    for i in range(6, 14):
        ymd = ymd * 10 + (s.ptr[i] - 48)
    year = ymd // 10000
    month = ymd // 100 % 100
    day = ymd % 100
    if year < 1 or month < 1 or month > 12 or day < 1 or day > days_in_month(year, month):
        return False
    return ymd <= app_ymd


# ---- subject rows -----------------------------------------------------------------------

cdef inline void emit(Ctx* x, int64_t* pos, bint write, int64_t order_row, int rule, int party,
                      int64_t line_row, int variant) noexcept nogil:
    """Count (and when `write`, store) one subject row of an enabled rule."""
    if not (x.p.enabled_mask & bit(rule)):
        return
    if write:
        x.s_order_row[pos[0]] = order_row
        x.s_rule[pos[0]] = <uint8_t>rule
        x.s_party[pos[0]] = <int8_t>party
        x.s_line_row[pos[0]] = line_row
        x.s_variant[pos[0]] = <uint8_t>variant
    pos[0] += 1


# ---- parties ----------------------------------------------------------------------------

cdef inline int32_t find_enterprise(Ctx* x, StrRef code) noexcept nogil:
    """The enterprise row of a code, or -1; through x.recent when there is one."""
    cdef KeyVal v
    cdef uint64_t h = hash_str(code, 0)
    cdef Recent* seen
    v.s0 = code
    v.s1.ptr = NULL
    v.s1.len = 0
    v.i0 = 0
    v.has_null = code.len < 0
    if x.recent == NULL or code.len < 0:
        return table_find(&x.ent_table, &x.ent_key, &v, key_hash_after(&v, h))
    seen = x.recent + (h & (RECENT_SLOTS - 1))
    if seen.len != code.len or not mc_bytes_eq(seen.ptr, code.ptr, code.len):
        seen.ptr = code.ptr
        seen.len = code.len
        seen.row = table_find(&x.ent_table, &x.ent_key, &v, key_hash_after(&v, h))
    return seen.row


cdef inline uint64_t check_party(Ctx* x, int64_t i, int party, int role, StrRef code,
                                 int64_t app_time, int64_t* pos, bint write) noexcept nogil:
    """ENTERPRISE_NOT_FILED / _INACTIVE / _DISHONEST for one party of order row i."""
    cdef uint64_t fails = 0
    cdef int32_t e = find_enterprise(x, code)
    cdef const Enterprise* ent
    if e < 0:
        emit(x, pos, write, i, 20, party, -1, 0)
        return bit(20)
    ent = x.enterprises + e
    if not (ent.roles & role):
        fails |= bit(20)
        emit(x, pos, write, i, 20, party, -1, 1)
    if not (ent.flags & ENT_ACTIVE):
        fails |= bit(21)
        emit(x, pos, write, i, 21, party, -1, 0)
    elif ent.flags & ENT_FROM and app_time < ent.valid_from:
        fails |= bit(21)
        emit(x, pos, write, i, 21, party, -1, 1)
    elif ent.flags & ENT_TO and app_time >= ent.valid_to:
        fails |= bit(21)
        emit(x, pos, write, i, 21, party, -1, 2)
    if ent.flags & ENT_DISHONEST:
        fails |= bit(22)
        emit(x, pos, write, i, 22, party, -1, 0)
    return fails


cdef inline uint64_t check_parties(Ctx* x, int64_t i, int32_t f, int64_t* pos,
                                   bint write) noexcept nogil:
    """Every party the order names (ebp, ebc; pay, logistics, agent from single documents)."""
    cdef int64_t app_time = col_i64(x.cols + O_APP_TIME, i, 0)
    cdef uint64_t fails = 0
    fails |= check_party(x, i, PARTY_EBP, ROLE_EBP, col_str(x.cols + O_EBP_CODE, i), app_time, pos, write)
    fails |= check_party(x, i, PARTY_EBC, ROLE_EBC, col_str(x.cols + O_EBC_CODE, i), app_time, pos, write)
    if x.pay_count[f] == 1:
        fails |= check_party(x, i, PARTY_PAY, ROLE_PAY,
                             col_str(x.cols + P_PAY_CODE, x.pay_last[f]), app_time, pos, write)
    if x.wb_count[f] == 1:
        fails |= check_party(x, i, PARTY_LOGISTICS, ROLE_LOGISTICS,
                             col_str(x.cols + W_LOGISTICS_CODE, x.wb_last[f]), app_time, pos, write)
    if x.p.inventory_rules and x.inv_of[f] >= 0:
        fails |= check_party(x, i, PARTY_AGENT, ROLE_AGENT,
                             col_str(x.cols + I_AGENT_CODE, x.inv_of[f]), app_time, pos, write)
    return fails


# ---- lines and tax ----------------------------------------------------------------------

cdef inline int32_t find_product(Ctx* x, StrRef ebc_code, uint64_t ebc_hash,
                                 StrRef item_no) noexcept nogil:
    """The product row of (ebc_code, item_no), or -1; ebc_hash = hash_str(ebc_code, 0), the
    same for every line of an order."""
    cdef KeyVal v
    v.s0 = ebc_code
    v.s1 = item_no
    v.i0 = 0
    v.has_null = ebc_code.len < 0 or item_no.len < 0
    return table_find(&x.prod_table, &x.prod_key, &v, key_hash_after(&v, ebc_hash))


cdef inline int not_filed_variant(Ctx* x, int32_t product, int64_t app_time) noexcept nogil:
    """PRODUCT_NOT_FILED variant, or -1 when the line's product is filed."""
    cdef const Product* filed
    if product < 0:
        return 0
    filed = x.products + product
    if filed.flags & PROD_REVOKED:
        return 1
    if filed.flags & PROD_FROM and app_time < filed.valid_from:
        return 2
    if filed.flags & PROD_TO and app_time >= filed.valid_to:
        return 3
    return -1


cdef inline bint line_tax(Ctx* x, int64_t line, int32_t product, int64_t items_total,
                          int64_t shipping, int64_t* tax) noexcept nogil:
    """Add t_i of SPEC §3.2 to tax; False when the order's tax must be skipped."""
    cdef const Product* filed = x.products + product
    cdef double p = <double>col_i64(x.cols + L_TOTAL_PRICE, line, 0)
    cdef double c = filed.consumption_tax_rate
    cdef double v = filed.vat_rate
    cdef double share, dutiable, consumption, vat, raw
    if filed.flags & PROD_UNTAXED:
        return False
    share = 0.0 if items_total == 0 else (<double>shipping) * p / (<double>items_total)
    dutiable = p + share
    consumption = dutiable * c / (1.0 - c)
    vat = (dutiable + consumption) * v
    raw = rint(x.p.tax_discount * (consumption + vat))
    # Out of int64 range is "not finite" too (the reference's cast gives null).
    if not isfinite(raw) or raw >= 9223372036854775808.0 or raw < -9223372036854775808.0:
        return False
    tax[0] += <int64_t>raw
    return True


@cython.cdivision(True)
cdef inline int64_t round_half_up_to_cent(int64_t units) noexcept nogil:
    """Ten-thousandths -> multiple of 100, halves toward +inf (floor division)."""
    cdef int64_t q = units + 50
    cdef int64_t d = q // 100
    if (q % 100 != 0) and (q < 0):
        d -= 1
    return d * 100


cdef inline uint64_t check_lines(Ctx* x, int64_t i, int32_t f, int64_t items_total,
                                 int64_t* pos, bint write, int64_t* computed_tax) noexcept nogil:
    """LINE_TOTAL_MISMATCH and PRODUCT_* per line (items_total: the sum of their total_price);
    computed_tax (INT64_MIN when skipped)."""
    cdef int64_t k, line, start = x.line_start[f], end = x.line_start[f + 1]
    cdef int64_t app_time = col_i64(x.cols + O_APP_TIME, i, 0)
    cdef int64_t tax = 0, shipping
    cdef StrRef ebc_code = col_str(x.cols + O_EBC_CODE, i)
    cdef uint64_t ebc_hash = hash_str(ebc_code, 0)
    cdef int32_t product
    cdef int variant
    cdef uint8_t flags
    cdef uint64_t fails = 0
    cdef bint taxable = end > start
    shipping = col_i64(x.cols + O_FREIGHT, i, 0) - col_i64(x.cols + O_DISCOUNT, i, 0)
    for k in range(start, end):
        line = x.line_rows[k]
        if mc_product_differs(col_i64(x.cols + L_QTY, line, 0), col_i64(x.cols + L_PRICE, line, 0),
                              col_i64(x.cols + L_TOTAL_PRICE, line, 0), MONEY_SCALE, LINE_TOLERANCE):
            fails |= bit(13)
            emit(x, pos, write, i, 13, -1, line, 0)
        product = find_product(x, ebc_code, ebc_hash, col_str(x.cols + L_ITEM_NO, line))
        variant = not_filed_variant(x, product, app_time)
        if variant >= 0:
            fails |= bit(23)
            emit(x, pos, write, i, 23, -1, line, variant)
            taxable = False
            continue
        flags = x.products[product].flags
        if x.p.positive_list and not (flags & PROD_POSITIVE):
            fails |= bit(24)
            emit(x, pos, write, i, 24, -1, line, 0)
        if flags & PROD_PROHIBITED:
            fails |= bit(25)
            emit(x, pos, write, i, 25, -1, line, 0)
        if taxable and not line_tax(x, line, product, items_total, shipping, &tax):
            taxable = False
    computed_tax[0] = round_half_up_to_cent(tax) if taxable else INT64_MIN
    return fails


# ---- document rules ---------------------------------------------------------------------

cdef inline uint64_t check_payment(Ctx* x, int64_t i, int64_t pay) noexcept nogil:
    """Rules 6-10 against the single linked payment."""
    cdef uint64_t fails = 0
    cdef int64_t gap = col_i64(x.cols + P_AMOUNT_PAID, pay, 0) - col_i64(x.cols + O_ACTUAL_PAID, i, 0)
    if abs64(gap) > x.p.amount_tolerance:
        fails |= bit(6)
    if texts_differ(col_str(x.cols + P_PAYER_ID_NUMBER, pay), col_str(x.cols + O_BUYER_ID_NUMBER, i)):
        fails |= bit(7)
    if texts_differ(col_str(x.cols + P_PAYER_NAME, pay), col_str(x.cols + O_BUYER_NAME, i)):
        fails |= bit(8)
    if named_and_differs(col_str(x.cols + O_PAY_CODE, i), col_str(x.cols + P_PAY_CODE, pay)) or \
            named_and_differs(col_str(x.cols + O_PAY_TRANSACTION_ID, i),
                              col_str(x.cols + P_PAY_TRANSACTION_ID, pay)):
        fails |= bit(9)
    if currency_differs(col_str(x.cols + O_CURRENCY, i), col_str(x.cols + P_CURRENCY, pay)):
        fails |= bit(10)
    return fails


cdef inline uint64_t check_waybill(Ctx* x, int64_t i, int64_t wb) noexcept nogil:
    """Rules 14-15 against the single linked waybill."""
    cdef uint64_t fails = 0
    if texts_differ(col_str(x.cols + W_CONSIGNEE, wb), col_str(x.cols + O_CONSIGNEE, i)):
        fails |= bit(14)
    if phones_differ(col_str(x.cols + O_CONSIGNEE_TELEPHONE, i),
                     col_str(x.cols + W_CONSIGNEE_TELEPHONE, wb)):
        fails |= bit(15)
    return fails


cdef inline bint arrival_window_exceeded(Ctx* x, int64_t i, int64_t pay, int64_t wb) noexcept nogil:
    cdef int64_t a = col_i64(x.cols + O_APP_TIME, i, 0)
    cdef int64_t b = col_i64(x.cols + P_PAY_TIME, pay, 0)
    cdef int64_t c = col_i64(x.cols + W_APP_TIME, wb, 0)
    cdef int64_t hi = a, lo = a
    cdef uint64_t gap
    if b > hi: hi = b
    if c > hi: hi = c
    if b < lo: lo = b
    if c < lo: lo = c
    gap = <uint64_t>hi - <uint64_t>lo  # exact, where hi - lo would overflow int64 (far times)
    return x.p.arrival_window_us < 0 or gap > <uint64_t>x.p.arrival_window_us


cdef inline uint64_t check_inventory(Ctx* x, int64_t i, int64_t inv, int64_t wb) noexcept nogil:
    """INVENTORY_MISMATCH: ebc_code, buyer ID, and the logistics key of the single waybill."""
    if texts_differ(col_str(x.cols + I_EBC_CODE, inv), col_str(x.cols + O_EBC_CODE, i)) or \
            texts_differ(col_str(x.cols + I_BUYER_ID_NUMBER, inv),
                         col_str(x.cols + O_BUYER_ID_NUMBER, i)):
        return bit(28)
    if wb >= 0 and (
            texts_differ(col_str(x.cols + I_LOGISTICS_CODE, inv), col_str(x.cols + W_LOGISTICS_CODE, wb))
            or texts_differ(col_str(x.cols + I_LOGISTICS_NO, inv), col_str(x.cols + W_LOGISTICS_NO, wb))):
        return bit(28)
    return 0


cdef inline uint64_t check_buyer_id(Ctx* x, int64_t i) noexcept nogil:
    cdef StrRef id_type = col_str(x.cols + O_BUYER_ID_TYPE, i)
    if id_type.len == 1 and id_type.ptr[0] == b'1' and \
            not resident_id_valid(col_str(x.cols + O_BUYER_ID_NUMBER, i),
                                  col_i64(x.cols + O_APP_YMD, i, 0)):
        return bit(17)
    return 0


cdef inline void prefetch_documents(Ctx* x, int64_t i) noexcept nogil:
    """Ask for what evaluate_order(i) will read of the order's payment, waybill, inventory and
    first line, some orders before it is evaluated (kernel.pyx evaluate_block)."""
    cdef int32_t f = x.order_first[i]
    cdef int64_t pay = x.pay_last[f], wb = x.wb_last[f]
    cdef int64_t inv = x.inv_of[f] if x.p.inventory_rules else -1
    cdef int64_t line = x.line_rows[x.line_start[f]] if x.line_start[f + 1] > x.line_start[f] else -1
    prefetch_str(x.cols + P_PAY_CODE, pay)
    prefetch_str(x.cols + P_PAY_TRANSACTION_ID, pay)
    prefetch_str(x.cols + P_PAYER_ID_NUMBER, pay)
    prefetch_str(x.cols + P_PAYER_NAME, pay)
    prefetch_str(x.cols + P_CURRENCY, pay)
    prefetch_value(x.cols + P_AMOUNT_PAID, pay)
    prefetch_value(x.cols + P_PAY_TIME, pay)
    prefetch_str(x.cols + W_CONSIGNEE, wb)
    prefetch_str(x.cols + W_CONSIGNEE_TELEPHONE, wb)
    prefetch_str(x.cols + W_LOGISTICS_CODE, wb)
    prefetch_str(x.cols + W_LOGISTICS_NO, wb)
    prefetch_value(x.cols + W_APP_TIME, wb)
    prefetch_str(x.cols + I_EBC_CODE, inv)
    prefetch_str(x.cols + I_BUYER_ID_NUMBER, inv)
    prefetch_str(x.cols + I_LOGISTICS_CODE, inv)
    prefetch_str(x.cols + I_LOGISTICS_NO, inv)
    prefetch_str(x.cols + I_AGENT_CODE, inv)
    prefetch_str(x.cols + L_ITEM_NO, line)
    prefetch_value(x.cols + L_QTY, line)
    prefetch_value(x.cols + L_PRICE, line)
    prefetch_value(x.cols + L_TOTAL_PRICE, line)


cdef inline void prefetch_document_strings(Ctx* x, int64_t i) noexcept nogil:
    """Second stage of prefetch_documents: the out-of-line bytes its views point at."""
    cdef int32_t f = x.order_first[i]
    cdef int64_t pay = x.pay_last[f], wb = x.wb_last[f]
    cdef int64_t inv = x.inv_of[f] if x.p.inventory_rules else -1
    prefetch_str_data(x.cols + P_PAY_TRANSACTION_ID, pay)
    prefetch_str_data(x.cols + P_PAYER_ID_NUMBER, pay)
    prefetch_str_data(x.cols + P_PAYER_NAME, pay)
    prefetch_str_data(x.cols + W_CONSIGNEE, wb)
    prefetch_str_data(x.cols + W_LOGISTICS_NO, wb)
    prefetch_str_data(x.cols + I_BUYER_ID_NUMBER, inv)
    prefetch_str_data(x.cols + I_LOGISTICS_NO, inv)


cdef inline uint64_t evaluate_order(Ctx* x, int64_t i, int64_t* n_subjects) noexcept nogil:
    """Every rule but the annual limit for order row i; fills the per-order outputs."""
    cdef int32_t f = x.order_first[i]
    cdef int64_t pay = x.pay_last[f] if x.pay_count[f] == 1 else -1
    cdef int64_t wb = x.wb_last[f] if x.wb_count[f] == 1 else -1
    cdef int64_t inv = x.inv_of[f] if x.p.inventory_rules else -1
    cdef int64_t n_lines = x.line_start[f + 1] - x.line_start[f]
    cdef int64_t items_total = 0, k, gv, lv, tax
    cdef uint64_t fails = 0
    cdef int64_t pos = 0
    gv = col_i64(x.cols + O_GOODS_VALUE, i, 0)
    lv = gv + col_i64(x.cols + O_FREIGHT, i, 0) - col_i64(x.cols + O_DISCOUNT, i, 0)
    for k in range(x.line_start[f], x.line_start[f + 1]):
        items_total += col_i64(x.cols + L_TOTAL_PRICE, x.line_rows[k], 0)
    if x.copies[f] > 1:
        fails |= bit(0)
    if x.pay_count[f] == 0:
        fails |= bit(1)
    elif x.pay_count[f] > 1:
        fails |= bit(2)
    if x.wb_count[f] == 0:
        fails |= bit(3)
    elif x.wb_count[f] > 1:
        fails |= bit(4)
    if n_lines == 0:
        fails |= bit(5)
    if pay >= 0:
        fails |= check_payment(x, i, pay)
    if abs64(lv + col_i64(x.cols + O_TAX_TOTAL, i, 0) - col_i64(x.cols + O_ACTUAL_PAID, i, 0)) \
            > x.p.amount_tolerance:
        fails |= bit(11)
    if n_lines > 0 and abs64(gv - items_total) > x.p.amount_tolerance:
        fails |= bit(12)
    if wb >= 0:
        fails |= check_waybill(x, i, wb)
    if pay >= 0 and wb >= 0 and arrival_window_exceeded(x, i, pay, wb):
        fails |= bit(16)
    fails |= check_buyer_id(x, i)
    if lv > x.p.single_limit:
        fails |= bit(18)
    fails |= check_parties(x, i, f, &pos, False)
    fails |= check_lines(x, i, f, items_total, &pos, False, &tax)
    if tax != INT64_MIN and abs64(col_i64(x.cols + O_TAX_TOTAL, i, 0) - tax) > x.p.tax_tolerance:
        fails |= bit(26)
    if x.p.inventory_rules:
        if inv < 0:
            fails |= bit(27)
        else:
            fails |= check_inventory(x, i, inv, wb)
    x.mask[i] = fails & x.p.enabled_mask
    x.payment_row[i] = pay if pay >= 0 else INT64_MIN
    x.waybill_row[i] = wb if wb >= 0 else INT64_MIN
    x.inventory_row[i] = inv if inv >= 0 else INT64_MIN
    x.items_total[i] = items_total if n_lines > 0 else INT64_MIN
    x.computed_tax[i] = tax
    x.limit_value[i] = lv
    n_subjects[0] = pos
    return fails


cdef inline void write_subjects(Ctx* x, int64_t i) noexcept nogil:
    """Write order row i's subject rows at its offset (same walk as evaluate_order)."""
    cdef int32_t f = x.order_first[i]
    cdef int64_t pos = x.subject_start[i]
    cdef int64_t tax
    check_parties(x, i, f, &pos, True)
    check_lines(x, i, f, x.items_total[i], &pos, True, &tax)  # (the order's, when it has lines)
