# cython: language_level=3
"""What one kernel run reads and writes: the input columns (by a fixed index), the rule
parameters, the linking results and the per-order output arrays, in one struct that every
phase takes by pointer.
"""

from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint64_t

from arrow_access cimport Col
from hashtable cimport HashTable, KeySpec

# Column indexes; KERNEL_COLUMNS (matchcore/engine/base.py) lists the (table, column) names in
# exactly this order.
cdef enum ColumnIndex:
    O_ORDER_NO, O_EBP_CODE, O_EBC_CODE, O_GOODS_VALUE, O_FREIGHT, O_DISCOUNT, O_TAX_TOTAL
    O_ACTUAL_PAID, O_CURRENCY, O_BUYER_ID_TYPE, O_BUYER_ID_NUMBER, O_BUYER_NAME, O_PAY_CODE
    O_PAY_TRANSACTION_ID, O_CONSIGNEE, O_CONSIGNEE_TELEPHONE, O_APP_TIME, O_APP_YEAR, O_APP_YMD
    P_PAY_CODE, P_PAY_TRANSACTION_ID, P_ORDER_NO, P_EBP_CODE, P_PAYER_ID_NUMBER, P_PAYER_NAME
    P_AMOUNT_PAID, P_CURRENCY, P_PAY_TIME
    W_LOGISTICS_CODE, W_LOGISTICS_NO, W_ORDER_NO, W_EBP_CODE, W_CONSIGNEE
    W_CONSIGNEE_TELEPHONE, W_APP_TIME
    L_ORDER_NO, L_EBP_CODE, L_ITEM_NO, L_QTY, L_PRICE, L_TOTAL_PRICE
    I_ORDER_NO, I_EBP_CODE, I_EBC_CODE, I_LOGISTICS_CODE, I_LOGISTICS_NO, I_AGENT_CODE
    I_BUYER_ID_NUMBER
    R_EBC_CODE, R_ITEM_NO, R_HS_CODE, R_VAT_RATE, R_CONSUMPTION_TAX_RATE, R_STATUS
    R_VALID_FROM, R_VALID_TO
    H_HS_PREFIX, H_LIST
    E_CODE, E_ROLES, E_CREDIT_CLASS, E_STATUS, E_VALID_FROM, E_VALID_TO
    Q_BUYER_ID_NUMBER, Q_YEAR, Q_USED
    N_COLUMNS

# Bits of the per-row flags precomputed for the small reference tables.
cdef enum:
    ENT_ACTIVE = 1
    ENT_DISHONEST = 2
    ENT_FROM = 4            # valid_from is not null
    ENT_TO = 8              # valid_to is not null
    PROD_REVOKED = 1
    PROD_POSITIVE = 2
    PROD_PROHIBITED = 4
    PROD_FROM = 8           # valid_from is not null
    PROD_TO = 16            # valid_to is not null
    PROD_UNTAXED = 32       # a null rate, or a consumption tax rate not below 1: no tax
    HS_POSITIVE = 1
    HS_PROHIBITED = 2

# What the checks read of a reference row, gathered when its table is prepared: a lookup then
# reads one record instead of a column (and its null test) per value.
ctypedef struct Enterprise:
    int64_t roles           # E_ROLES, 0 when null
    int64_t valid_from      # E_VALID_FROM, when flags has ENT_FROM
    int64_t valid_to        # E_VALID_TO, when flags has ENT_TO
    uint8_t flags

ctypedef struct Product:
    int64_t valid_from      # R_VALID_FROM, when flags has PROD_FROM
    int64_t valid_to        # R_VALID_TO, when flags has PROD_TO
    double vat_rate         # R_VAT_RATE and
    double consumption_tax_rate  # R_CONSUMPTION_TAX_RATE, when flags lacks PROD_UNTAXED
    uint8_t flags

# A code looked up in the enterprise table, remembered by its hash's low bits: a micro-batch
# names a few dozen enterprises many times over (see checks.pxd find_enterprise).
cdef enum:
    RECENT_SLOTS = 128

ctypedef struct Recent:
    const char* ptr         # the code's bytes (in an input column: valid for the run)
    int64_t len             # -1: an empty slot
    int32_t row             # its enterprise row, or -1

ctypedef struct Params:
    int64_t amount_tolerance
    int64_t tax_tolerance
    int64_t single_limit
    int64_t annual_limit
    int64_t arrival_window_us
    double tax_discount
    uint64_t enabled_mask     # rules not off
    uint64_t reject_mask      # rules with severity reject
    bint inventory_rules      # an inventories table was given
    bint positive_list        # an hs_lists table was given

ctypedef struct Ctx:
    Col* cols
    int64_t n_orders
    int64_t n_payments
    int64_t n_waybills
    int64_t n_items
    int64_t n_inventories
    int64_t n_products
    int64_t n_hs
    int64_t n_enterprises
    int64_t n_ledger
    Params p
    int threads
    int part_bits
    # Linking, indexed by order row: first order row with the same key (or the row itself).
    int32_t* order_first
    # Indexed by the first row of a key:
    int32_t* copies
    int32_t* pay_count
    int32_t* pay_last
    int32_t* wb_count
    int32_t* wb_last
    int32_t* inv_of
    int64_t* line_start       # n_orders + 1 offsets into line_rows
    int32_t* line_rows
    # Per document row: the first order row it links to, or -1.
    int32_t* pay_order
    int32_t* item_order
    int32_t* inv_order
    uint8_t* wb_linked
    # Reference tables.
    HashTable ent_table
    KeySpec ent_key
    Enterprise* enterprises   # per enterprise row
    Recent* recent            # RECENT_SLOTS codes looked up, or NULL (several threads)
    HashTable prod_table
    KeySpec prod_key
    Product* products         # per product row
    # Outputs, per order row (INT64_MIN marks null in nullable columns).
    uint64_t* mask
    int64_t* payment_row
    int64_t* waybill_row
    int64_t* inventory_row
    int64_t* items_total
    int64_t* computed_tax
    int64_t* limit_value
    int64_t* annual_spent
    int64_t* subject_start    # n_orders + 1 offsets into the subject arrays
    # Subject rows.
    int64_t* s_order_row
    uint8_t* s_rule
    int8_t* s_party
    int64_t* s_line_row
    uint8_t* s_variant
