# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled matching kernel: Arrow columns in (zero-copy, through the PyCapsule interface),
per-order results out. One pass links every document to its order and decides every rule;
a second pass walks the annual limit. The GIL is released for both.
"""

import os

import numpy as np
import pyarrow as pa

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.stdint cimport INT64_MIN, int8_t, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset, strcmp, strlen
from cython.parallel cimport prange
cimport openmp

from annual cimport ANNUAL_RULE, Walk, annual_walk
from arrow_access cimport *
from checks cimport (evaluate_order, prefetch_document_strings, prefetch_documents,
                    write_subjects)
from context cimport *
from hashing cimport hash_bytes
from hashtable cimport (CACHED_ROWS, HashTable, KeySpec, KeyVal, build_rows, hash_rows, key_at,
                        key_hash, probe_pipelined, probe_rows, table_build, table_copy_keys, table_find, table_free,
                        table_init)
from join cimport (group_rows, link_inventories, link_lines, link_orders, link_payments,
                   link_waybills)

#: (table, column) of every ColumnIndex, in its order (context.pxd): declared with the canonical
#: tables' other contracts (the streaming matcher keeps a document's values of these columns).
from matchcore.engine.base import KERNEL_COLUMNS as COLUMNS

assert len(COLUMNS) == N_COLUMNS

#: Columns the kernel reads only in row order (each order's own fields, the probe keys of the
#: documents). Their pages are left as they are: moving them to huge pages costs a copy and
#: saves little, since sequential reads spread one TLB miss over a whole 4 KiB page.
SEQUENTIAL = frozenset({
    ("orders", "ebc_code"), ("orders", "goods_value"), ("orders", "freight"),
    ("orders", "discount"), ("orders", "tax_total"), ("orders", "actual_paid"),
    ("orders", "currency"), ("orders", "buyer_id_type"), ("orders", "buyer_name"),
    ("orders", "pay_code"), ("orders", "pay_transaction_id"), ("orders", "consignee"),
    ("orders", "consignee_telephone"), ("orders", "_app_ymd"),
    ("payments", "order_no"), ("payments", "ebp_code"),
    ("waybills", "order_no"), ("waybills", "ebp_code"),
    ("order_items", "order_no"), ("order_items", "ebp_code"),
    ("inventories", "order_no"), ("inventories", "ebp_code"),
})
assert SEQUENTIAL <= set(COLUMNS)


class ArrowLayoutError(TypeError):
    """An Arrow column whose physical type the kernel does not read."""


cdef inline void* ptr(object array) except? NULL:
    """The data pointer of a NumPy array this module allocated (contiguous, owned, never
    resized, so the pointer stays valid while the array lives). Through the buffer protocol:
    `array.ctypes.data` costs ~2.5 µs, which a run paid ~40 times (a micro-batch's run takes
    a few hundred µs in all)."""
    cdef Py_buffer view
    cdef void* data
    PyObject_GetBuffer(array, &view, PyBUF_SIMPLE)
    data = view.buf
    PyBuffer_Release(&view)
    return data


cdef int layout_of(bytes fmt) except -1:
    if fmt == b"u":
        return LAYOUT_UTF8
    if fmt == b"U":
        return LAYOUT_LARGE_UTF8
    if fmt == b"vu":
        return LAYOUT_VIEW
    if fmt == b"l" or fmt.startswith(b"ts"):
        return LAYOUT_I64
    if fmt == b"i":
        return LAYOUT_I32
    if fmt == b"C":
        return LAYOUT_U8
    if fmt == b"g":
        return LAYOUT_F64
    if fmt == b"n":
        return LAYOUT_NULL
    raise ArrowLayoutError(f"Arrow format {fmt.decode(errors='replace')!r} is not supported")


cdef extern from "mc_memory.h":
    void mc_advise_huge(const void* p, size_t n, int collapse) noexcept nogil


# MADV_COLLAPSE moves a buffer's pages to huge pages synchronously. On a quiet machine a first
# run at 1M orders measured about 0.4 s faster without it (median of alternating fresh
# processes: 4.2 s against 4.6 s; the copy costs more than the TLB misses it saves), so it is
# off; MATCHCORE_HUGE_COLLAPSE=1 turns it on (a long-lived process that runs many times).
cdef int _huge_collapse = os.environ.get("MATCHCORE_HUGE_COLLAPSE", "0") == "1"


cdef void advise_chunk(const ArrowArray* a, int layout) noexcept nogil:
    """Huge pages for the buffers of one chunk that random probes will touch."""
    cdef int64_t rows = a.offset + a.length, i, data_size
    cdef const int64_t* sizes
    if not _huge_collapse:
        return
    if a.buffers[0] != NULL:
        mc_advise_huge(a.buffers[0], <size_t>((rows + 7) // 8), 1)
    if layout == LAYOUT_VIEW:
        mc_advise_huge(a.buffers[1], <size_t>(16 * rows), 1)
        sizes = <const int64_t*>a.buffers[a.n_buffers - 1]
        for i in range(2, a.n_buffers - 1):
            mc_advise_huge(a.buffers[i], <size_t>sizes[i - 2], 1)
    elif layout == LAYOUT_UTF8:
        mc_advise_huge(a.buffers[1], <size_t>(4 * (rows + 1)), 1)
        data_size = (<const int32_t*>a.buffers[1])[rows]
        mc_advise_huge(a.buffers[2], <size_t>data_size, 1)
    elif layout == LAYOUT_LARGE_UTF8:
        mc_advise_huge(a.buffers[1], <size_t>(8 * (rows + 1)), 1)
        data_size = (<const int64_t*>a.buffers[1])[rows]
        mc_advise_huge(a.buffers[2], <size_t>data_size, 1)
    elif layout == LAYOUT_I64 or layout == LAYOUT_F64:
        mc_advise_huge(a.buffers[1], <size_t>(8 * rows), 1)
    elif layout == LAYOUT_I32:
        mc_advise_huge(a.buffers[1], <size_t>(4 * rows), 1)


cdef class ArrowColumn:
    """One column imported through `__arrow_c_stream__` or `__arrow_c_array__`, held zero-copy.

    `None` gives an absent column (every value null). `huge` moves its buffers to huge pages
    (for columns the kernel reads in random row order).
    """

    cdef Col col
    cdef ArrowArray* arrays
    cdef int64_t n_arrays
    cdef int32_t* chunk_at
    cdef readonly str format

    def __cinit__(self, source=None, bint huge=True):
        self.arrays = NULL
        self.n_arrays = 0
        self.chunk_at = NULL
        self.col.chunks = NULL
        self._clear()
        self.col.layout = LAYOUT_ABSENT
        self.format = ""
        if source is None:
            return
        if hasattr(source, "__arrow_c_stream__"):
            self._import_stream(source.__arrow_c_stream__())
        elif hasattr(source, "__arrow_c_array__"):
            schema_capsule, array_capsule = source.__arrow_c_array__()
            self._import_array(schema_capsule, array_capsule)
        else:
            raise ArrowLayoutError(
                f"{type(source).__name__} does not export Arrow data (__arrow_c_stream__)"
            )
        self._index_chunks(huge)

    cdef void _append(self, ArrowArray* array) except *:
        cdef ArrowArray* grown = <ArrowArray*>realloc(
            self.arrays, <size_t>(self.n_arrays + 1) * sizeof(ArrowArray))
        if grown == NULL:
            mc_release_array(array)
            raise MemoryError()
        self.arrays = grown
        memcpy(&self.arrays[self.n_arrays], array, sizeof(ArrowArray))
        self.n_arrays += 1

    cdef void _import_stream(self, object capsule) except *:
        cdef ArrowArrayStream* stream = <ArrowArrayStream*>PyCapsule_GetPointer(
            capsule, "arrow_array_stream")
        cdef ArrowSchema schema
        cdef ArrowArray array
        if mc_stream_schema(stream, &schema) != 0:
            raise ArrowLayoutError("the Arrow stream gave no schema")
        try:
            self.format = (<bytes>schema.format).decode()
            self.col.layout = layout_of(<bytes>schema.format)
        finally:
            mc_release_schema(&schema)
        while True:
            if mc_stream_next(stream, &array) != 0:
                raise ArrowLayoutError("the Arrow stream failed while reading a chunk")
            if array.release == NULL:
                break
            self._append(&array)
        mc_release_stream(stream)

    cdef void _import_array(self, object schema_capsule, object array_capsule) except *:
        cdef ArrowSchema* schema = <ArrowSchema*>PyCapsule_GetPointer(schema_capsule, "arrow_schema")
        cdef ArrowArray* array = <ArrowArray*>PyCapsule_GetPointer(array_capsule, "arrow_array")
        self.format = (<bytes>schema.format).decode()
        self.col.layout = layout_of(<bytes>schema.format)
        self._append(array)
        array.release = NULL  # moved: the capsule must not release it again

    cdef void _index_chunks(self, bint huge) except *:
        cdef int64_t i, start = 0, n = 0
        cdef ArrowArray* a
        cdef Chunk* ch
        self.col.chunks = <Chunk*>malloc(<size_t>(self.n_arrays + 1) * sizeof(Chunk))
        if self.col.chunks == NULL:
            raise MemoryError()
        for i in range(self.n_arrays):
            a = &self.arrays[i]
            if a.length == 0:
                continue  # empty chunks would confuse the row -> chunk search
            ch = &self.col.chunks[n]
            ch.start = start
            ch.length = a.length
            ch.offset = a.offset
            ch.validity = NULL
            ch.values = NULL
            ch.data = NULL
            ch.buffers = NULL
            if self.col.layout != LAYOUT_NULL:
                if huge:
                    advise_chunk(a, self.col.layout)
                if a.null_count != 0 and a.n_buffers > 0:
                    ch.validity = <const uint8_t*>a.buffers[0]
                ch.values = a.buffers[1]
                if self.col.layout == LAYOUT_UTF8 or self.col.layout == LAYOUT_LARGE_UTF8:
                    ch.data = <const char*>a.buffers[2]
                elif self.col.layout == LAYOUT_VIEW:
                    ch.buffers = <const char**>(a.buffers + 2)
            start += a.length
            n += 1
        self.col.nchunks = n
        self.col.length = start
        if n > 1:
            self._index_blocks()
        elif n == 1 and self.col.chunks.validity == NULL:
            self._index_dense()

    cdef void _index_dense(self) noexcept:
        """The dense_* pointers of a column of one chunk without nulls (arrow_access.pxd)."""
        cdef const Chunk* ch = self.col.chunks
        if self.col.layout == LAYOUT_UTF8:
            self.col.dense_offsets = (<const int32_t*>ch.values) + ch.offset
            self.col.dense_data = ch.data
        elif self.col.layout == LAYOUT_I64:
            self.col.dense_i64 = (<const int64_t*>ch.values) + ch.offset

    cdef void _index_blocks(self) except *:
        """chunk_at: the chunk of every block's first row, blocks of 2**bits <= shortest chunk."""
        cdef Col* c = &self.col
        cdef int64_t shortest = c.length, k = 0, b, nblocks
        cdef int bits = 0
        for b in range(c.nchunks):
            shortest = min(shortest, c.chunks[b].length)
        while (<int64_t>2 << bits) <= shortest:
            bits += 1
        nblocks = ((c.length - 1) >> bits) + 1
        self.chunk_at = <int32_t*>malloc(<size_t>nblocks * sizeof(int32_t))
        if self.chunk_at == NULL:
            raise MemoryError()
        for b in range(nblocks):
            while k + 1 < c.nchunks and c.chunks[k + 1].start <= (b << bits):
                k += 1
            self.chunk_at[b] = <int32_t>k
        c.chunk_at = self.chunk_at
        c.block_bits = bits

    cdef void _clear(self) noexcept:
        """Release the arrays held and their index (the layout and format stay): no rows."""
        cdef int64_t i
        for i in range(self.n_arrays):
            mc_release_array(&self.arrays[i])
        self.n_arrays = 0  # (the room for their structs stays)
        free(self.col.chunks)
        free(self.chunk_at)
        self.chunk_at = NULL
        self.col.length = 0
        self.col.nchunks = 0
        self.col.chunks = NULL
        self.col.chunk_at = NULL
        self.col.block_bits = 0
        self.col.dense_offsets = NULL
        self.col.dense_data = NULL
        self.col.dense_i64 = NULL

    def __dealloc__(self):
        self._clear()
        free(self.arrays)

    def __len__(self):
        return self.col.length

    @property
    def n_chunks(self) -> int:
        return self.col.nchunks

    def to_pylist(self) -> list:
        """Every value as Python (str, int, float or None): the access layer, for tests."""
        cdef int64_t row
        cdef StrRef s
        out = []
        for row in range(self.col.length):
            if self.col.layout in (LAYOUT_UTF8, LAYOUT_LARGE_UTF8, LAYOUT_VIEW):
                s = col_str(&self.col, row)
                out.append(None if s.len < 0 else s.ptr[:s.len].decode("utf-8"))
            elif col_is_null(&self.col, row):
                out.append(None)
            elif self.col.layout == LAYOUT_F64:
                out.append(col_f64(&self.col, row, 0.0))
            else:
                out.append(col_i64(&self.col, row, 0))
        return out


def import_table(source, list names, huge_names=frozenset()):
    """The columns `names` of a table that exports an Arrow stream of record batches (a
    pyarrow Table), each an ArrowColumn, read in one pass over the stream: {name: column}.
    A name the table lacks gives an absent column; `huge_names` are advised as in ArrowColumn.
    """
    return dict(zip(names, TableImport(names, huge_names).read(source)))


cdef class TableImport:
    """Reads the columns `names` of tables that export an Arrow stream of record batches into
    ArrowColumns, in one pass over the stream: each batch's column arrays are moved out of it
    (the C data interface lets a consumer take a child array and release the parent), as
    importing column by column costs a stream per column.

    Each read fills the same ArrowColumns again (releasing what the last read gave), and a
    table with the schema object of the last read (a pyarrow Schema: immutable) has its
    columns where they were: a stream's micro-batch tables of one kind share theirs, and
    making the columns and finding them among the children cost more than the rest of the
    import of a micro-batch's small tables.
    """

    cdef list columns  # of each name, in its order (a name given twice: one column)
    cdef dict by_name
    cdef list huge  # of each unique name, in by_name's order: advised as in ArrowColumn
    cdef object schema  # the schema object the columns were placed for; None: none yet
    cdef list placed  # per child of a batch of that schema: its column, or None

    def __cinit__(self, list names, huge_names=frozenset()):
        # (__new__: straight to the type's constructor, without a Python call per column)
        self.by_name = {name: ArrowColumn.__new__(ArrowColumn) for name in names}
        self.columns = [self.by_name[name] for name in names]
        self.huge = [name in huge_names for name in self.by_name]

    def read(self, source):
        """The columns of `source`, in the order of `names` (a name it lacks: an absent
        column): a list, refilled by the next read."""
        cdef object capsule = source.__arrow_c_stream__()
        cdef ArrowArrayStream* stream = <ArrowArrayStream*>PyCapsule_GetPointer(
            capsule, "arrow_array_stream")
        cdef ArrowArray batch
        cdef ArrowColumn column
        cdef Py_ssize_t i = 0
        self.release()
        try:
            shape = getattr(source, "schema", None)
            if shape is None or shape is not self.schema or not isinstance(shape, pa.Schema):
                self._place(stream, shape)
            while True:
                if mc_stream_next(stream, &batch) != 0:
                    raise ArrowLayoutError("the Arrow stream failed while reading a chunk")
                if batch.release == NULL:
                    break
                try:
                    _move_children(&batch, self.placed)
                finally:
                    mc_release_array(&batch)
        finally:
            mc_release_stream(stream)
        for column in self.by_name.values():
            if column.col.layout != LAYOUT_ABSENT:
                column._index_chunks(self.huge[i])
            i += 1
        return self.columns

    cdef int _place(self, ArrowArrayStream* stream, object shape) except -1:
        """Find the columns among the children of the stream's batches (`shape`: its schema
        object, kept when it is a pyarrow Schema)."""
        cdef ArrowSchema schema
        cdef ArrowColumn column
        self.schema = None
        for column in self.by_name.values():  # (absent unless the schema holds it)
            column.col.layout = LAYOUT_ABSENT
            column.format = ""
        if mc_stream_schema(stream, &schema) != 0:
            raise ArrowLayoutError("the Arrow stream gave no schema")
        try:
            self.placed = _placed_columns(&schema, self.by_name)
        finally:
            mc_release_schema(&schema)
        self.schema = shape if isinstance(shape, pa.Schema) else None
        return 0

    def release(self):
        """Let go of the arrays of the last read (its columns read as empty)."""
        cdef ArrowColumn column
        for column in self.by_name.values():
            column._clear()


cdef list _placed_columns(ArrowSchema* schema, dict columns):
    """The column each child of a record batch goes to (the last child of a name, as a dict of
    the columns would keep), with its format read from the schema. Names are matched as UTF-8
    in C: decoding every child's name into a dict cost more than the rest of the import of a
    micro-batch's small tables."""
    cdef ArrowColumn column
    cdef int64_t i
    cdef Py_ssize_t size
    cdef const char* wanted
    cdef const char* child
    cdef bytes fmt
    if strcmp(schema.format, "+s") != 0:
        raise ArrowLayoutError("the Arrow stream does not hold record batches")
    placed = [None] * schema.n_children
    for name, column in columns.items():
        wanted = PyUnicode_AsUTF8AndSize(name, &size)
        if <Py_ssize_t>strlen(wanted) != size:
            continue  # a NUL inside: no child's name (a C string) is this one
        for i in range(schema.n_children - 1, -1, -1):
            child = schema.children[i].name
            if child != NULL and child[0] == wanted[0] and strcmp(child, wanted) == 0:
                placed[i] = column
                break
    for i in range(schema.n_children):  # in the schema's order, as the first refused is named
        column = placed[i]
        if column is None:
            continue
        fmt = <bytes>schema.children[i].format
        try:
            column.col.layout = layout_of(fmt)
        except ArrowLayoutError as exc:
            name = PyUnicode_DecodeUTF8(schema.children[i].name,
                                        <Py_ssize_t>strlen(schema.children[i].name), NULL)
            raise ArrowLayoutError(f"column {name}: {exc}") from None
        column.format = fmt.decode()
    return placed


cdef int _move_children(ArrowArray* batch, list placed) except -1:
    """Move each placed child array of one batch into its column (the batch keeps the rest).
    A batch's own offset and length slice its children: a moved child takes them on."""
    cdef int64_t i
    cdef ArrowColumn column
    cdef ArrowArray* moved
    if batch.null_count != 0 or batch.n_children != len(placed):
        raise ArrowLayoutError("a record batch with nulls, or not as many columns as its schema")
    for i in range(batch.n_children):
        if placed[i] is None:
            continue
        column = placed[i]
        column._append(batch.children[i])  # copies the struct and owns it from now on
        batch.children[i].release = NULL  # moved: the batch's release must not release it
        moved = &column.arrays[column.n_arrays - 1]
        if batch.offset != 0 or moved.length != batch.length:
            moved.offset += batch.offset
            moved.length = batch.length
            if moved.null_count != 0:
                moved.null_count = -1  # of the whole child: unknown for the slice
    return 0


def hash_bytes_test(bytes data, uint64_t seed=0) -> int:
    """The kernel's byte hash, for tests."""
    return hash_bytes(data, len(data), seed)


def hash_table_test(ArrowColumn build, ArrowColumn probe, uint64_t hash_mask=~0ULL,
                    int part_bits=0, int threads=1, bint copy_keys=False, bint pipelined=False):
    """Build a table over `build` strings, probe it with `probe`: (first rows, found rows).

    `hash_mask` is AND-ed into every hash, so a test can force tag and slot collisions;
    `copy_keys` compares keys from the table's key copies (large tables) instead of the column;
    `pipelined` probes in prefetched blocks even when the tables are small enough not to.
    """
    cdef KeySpec bk, pk
    cdef HashTable t
    cdef int64_t n = build.col.length, m = probe.col.length, row
    hashes_arr = np.zeros(n + 1, dtype=np.uint64)
    first_arr = np.zeros(n + 1, dtype=np.int32)
    found_arr = np.zeros(m + 1, dtype=np.int32)
    cdef uint64_t* hashes = <uint64_t*>ptr(hashes_arr)
    cdef int32_t* first = <int32_t*>ptr(first_arr)
    cdef int32_t* found = <int32_t*>ptr(found_arr)
    cdef KeyVal v
    bk.s0 = &build.col
    bk.s1 = NULL
    bk.i0 = NULL
    pk.s0 = &probe.col
    pk.s1 = NULL
    pk.i0 = NULL
    if table_init(&t, n, part_bits) != 0:
        raise MemoryError()
    if copy_keys:
        table_copy_keys(&t, n + 1)
    with nogil:
        hash_rows(&bk, n, hashes, first, threads, t.keys)
        for row in range(n):
            hashes[row] &= hash_mask
        build_rows(&t, &bk, n, hashes, first, threads)
        if hash_mask == ~(<uint64_t>0) and pipelined:
            probe_pipelined(&t, &bk, &pk, m, found, threads)
        elif hash_mask == ~(<uint64_t>0):
            probe_rows(&t, &bk, &pk, m, found, threads)  # the product path
        else:
            for row in range(m):
                v = key_at(&pk, row)
                found[row] = table_find(&t, &bk, &v, key_hash(&v) & hash_mask)
    table_free(&t)
    return first_arr[:n].copy(), found_arr[:m].copy()


cdef bint str_is(StrRef s, const char* text, int64_t n) noexcept nogil:
    cdef int64_t i
    if s.len != n:
        return False
    for i in range(n):
        if s.ptr[i] != text[i]:
            return False
    return True


cdef void reference_keys(Ctx* x) noexcept nogil:
    """The keys of the enterprise and product tables: columns of this run's `x.cols`."""
    x.ent_key.s0 = x.cols + E_CODE
    x.ent_key.s1 = NULL
    x.ent_key.i0 = NULL
    x.prod_key.s0 = x.cols + R_EBC_CODE
    x.prod_key.s1 = x.cols + R_ITEM_NO
    x.prod_key.i0 = NULL


cdef int prepare_enterprises(Ctx* x) noexcept nogil:
    """Enterprise table by code, and each enterprise's record (context.pxd)."""
    cdef uint64_t* hashes = <uint64_t*>malloc(<size_t>(x.n_enterprises + 1) * sizeof(uint64_t))
    cdef int32_t* first = <int32_t*>malloc(<size_t>(x.n_enterprises + 1) * sizeof(int32_t))
    cdef int64_t e
    cdef Enterprise* ent
    cdef int rc
    if hashes == NULL or first == NULL:
        free(hashes)
        free(first)
        return -1
    rc = table_build(&x.ent_table, &x.ent_key, x.n_enterprises, hashes, first, 0, 1)
    for e in range(x.n_enterprises):
        ent = x.enterprises + e
        ent.flags = 0
        if str_is(col_str(x.cols + E_STATUS, e), b"active", 6):
            ent.flags |= ENT_ACTIVE
        if str_is(col_str(x.cols + E_CREDIT_CLASS, e), b"dishonest", 9):
            ent.flags |= ENT_DISHONEST
        ent.roles = col_i64(x.cols + E_ROLES, e, 0)
        ent.valid_from = col_i64(x.cols + E_VALID_FROM, e, 0)
        ent.valid_to = col_i64(x.cols + E_VALID_TO, e, 0)
        if not col_is_null(x.cols + E_VALID_FROM, e):
            ent.flags |= ENT_FROM
        if not col_is_null(x.cols + E_VALID_TO, e):
            ent.flags |= ENT_TO
    free(hashes)
    free(first)
    return rc


cdef uint64_t prefix_lengths(const Col* prefixes, int64_t n) noexcept nogil:
    """Bit k set: some prefix is k bytes long (every bit from 63 up when one is longer)."""
    cdef uint64_t lengths = 0
    cdef int64_t r, k
    for r in range(n):
        k = col_str(prefixes, r).len
        if k >= 63:
            lengths |= (<uint64_t>1) << 63
        elif k >= 0:
            lengths |= (<uint64_t>1) << k
    return lengths


cdef void product_record(Ctx* x, int64_t r) noexcept nogil:
    """Product row r's record: its dates, rates and flags but the HS-list ones."""
    cdef Product* filed = x.products + r
    filed.flags = 0 if str_is(col_str(x.cols + R_STATUS, r), b"active", 6) else PROD_REVOKED
    if not x.p.positive_list:
        filed.flags |= PROD_POSITIVE  # no hs_lists: every code counts as listed
    filed.valid_from = col_i64(x.cols + R_VALID_FROM, r, 0)
    filed.valid_to = col_i64(x.cols + R_VALID_TO, r, 0)
    if not col_is_null(x.cols + R_VALID_FROM, r):
        filed.flags |= PROD_FROM
    if not col_is_null(x.cols + R_VALID_TO, r):
        filed.flags |= PROD_TO
    filed.consumption_tax_rate = col_f64(x.cols + R_CONSUMPTION_TAX_RATE, r, 0.0)
    filed.vat_rate = col_f64(x.cols + R_VAT_RATE, r, 0.0)
    if col_is_null(x.cols + R_CONSUMPTION_TAX_RATE, r) or col_is_null(x.cols + R_VAT_RATE, r) \
            or not (filed.consumption_tax_rate < 1.0):
        filed.flags |= PROD_UNTAXED  # line_tax skips the order's tax


cdef int prepare_products(Ctx* x) noexcept nogil:
    """Product table by (ebc_code, item_no), and each product's record with its HS-list flags."""
    cdef int64_t n = x.n_products if x.n_products > x.n_hs else x.n_hs
    cdef uint64_t* hashes = <uint64_t*>malloc(<size_t>(n + 1) * sizeof(uint64_t))
    cdef int32_t* first = <int32_t*>malloc(<size_t>(n + 1) * sizeof(int32_t))
    cdef uint8_t* hs_flags = <uint8_t*>malloc(<size_t>(x.n_hs + 1))
    cdef HashTable hs_table
    cdef KeySpec hs_key
    cdef KeyVal v
    cdef StrRef code, name
    cdef int64_t r, length
    cdef int32_t q
    cdef Product* filed
    cdef int rc = 0
    cdef uint64_t lengths = prefix_lengths(x.cols + H_HS_PREFIX, x.n_hs)
    hs_key.s0 = x.cols + H_HS_PREFIX
    hs_key.s1 = NULL
    hs_key.i0 = NULL
    if hashes == NULL or first == NULL or hs_flags == NULL:
        rc = -1
    if rc == 0:
        rc = table_build(&x.prod_table, &x.prod_key, x.n_products, hashes, first, 0, 1)
    if rc == 0:
        rc = table_build(&hs_table, &hs_key, x.n_hs, hashes, first, 0, 1)
    if rc == 0:
        for r in range(x.n_hs):
            hs_flags[r] = 0
        for r in range(x.n_hs):  # a prefix on both lists carries both flags
            if first[r] >= 0:
                name = col_str(x.cols + H_LIST, r)
                if str_is(name, b"positive", 8):
                    hs_flags[first[r]] |= HS_POSITIVE
                elif str_is(name, b"prohibited", 10):
                    hs_flags[first[r]] |= HS_PROHIBITED
        for r in range(x.n_products):
            product_record(x, r)
            filed = x.products + r
            code = col_str(x.cols + R_HS_CODE, r)
            v.s1.ptr = NULL
            v.s1.len = 0
            v.i0 = 0
            v.has_null = False
            for length in range(1, code.len + 1):
                if length < 64 and not (lengths >> length) & 1:
                    continue  # no prefix this long: nothing to find
                v.s0.ptr = code.ptr
                v.s0.len = length
                q = table_find(&hs_table, &hs_key, &v, key_hash(&v))
                if q >= 0:
                    if hs_flags[q] & HS_POSITIVE:
                        filed.flags |= PROD_POSITIVE
                    if hs_flags[q] & HS_PROHIBITED:
                        filed.flags |= PROD_PROHIBITED
        table_free(&hs_table)
    free(hashes)
    free(first)
    free(hs_flags)
    return rc


#: The reference columns the prepared tables are built from (contiguous in COLUMNS).
cdef int FIRST_REFERENCE = R_EBC_CODE, END_REFERENCE = E_VALID_TO + 1


cdef class PreparedReferences:
    """The product and enterprise tables and records of the filed records, built by a run and
    reused by later runs given the same reference columns (the same ArrowColumn objects):
    for a micro-batch of a few orders, building them costs more than the rest of the run.
    A run given other columns builds them again."""

    cdef HashTable ent_table
    cdef HashTable prod_table
    cdef Enterprise* enterprises
    cdef Product* products
    cdef tuple sources  # the reference columns they were built from; None: not built
    cdef int64_t n_products, n_hs, n_enterprises
    cdef bint positive_list
    cdef readonly int builds  # how many times they were built (for tests and diagnostics)

    def __cinit__(self):
        memset(&self.ent_table, 0, sizeof(HashTable))
        memset(&self.prod_table, 0, sizeof(HashTable))
        self.enterprises = NULL
        self.products = NULL
        self.sources = None

    def __dealloc__(self):
        table_free(&self.ent_table)
        table_free(&self.prod_table)
        free(self.enterprises)
        free(self.products)

    @property
    def built(self) -> bool:
        return self.sources is not None

    cdef int fits(self, list columns, Ctx* x) except -1:
        """True when built from these columns, sizes and parameters."""
        cdef int i
        if self.sources is None or self.positive_list != x.p.positive_list:
            return False
        if (self.n_products != x.n_products or self.n_hs != x.n_hs
                or self.n_enterprises != x.n_enterprises):
            return False
        for i in range(FIRST_REFERENCE, END_REFERENCE):
            if columns[i] is not self.sources[i - FIRST_REFERENCE]:
                return False
        return True

    cdef int lend(self, Ctx* x) except -1:
        """Point the run at the tables and records (they stay owned here)."""
        x.ent_table = self.ent_table
        x.prod_table = self.prod_table
        x.enterprises = self.enterprises
        x.products = self.products
        return 0

    cdef int clear(self, Ctx* x) except -1:
        """Free the tables, and make zeroed records for the run to build them into."""
        table_free(&self.ent_table)
        table_free(&self.prod_table)
        memset(&self.ent_table, 0, sizeof(HashTable))
        memset(&self.prod_table, 0, sizeof(HashTable))
        self.sources = None
        free(self.enterprises)
        free(self.products)
        self.enterprises = <Enterprise*>calloc(<size_t>(x.n_enterprises + 1), sizeof(Enterprise))
        self.products = <Product*>calloc(<size_t>(x.n_products + 1), sizeof(Product))
        if self.enterprises == NULL or self.products == NULL:
            raise MemoryError()
        return self.lend(x)

    cdef int adopt(self, Ctx* x, list columns, bint built) except -1:
        """Take ownership of the tables the run built (`built`: completely)."""
        self.ent_table = x.ent_table
        self.prod_table = x.prod_table
        if built:
            self.builds += 1
            self.sources = tuple(columns[FIRST_REFERENCE:END_REFERENCE])
            self.n_products = x.n_products
            self.n_hs = x.n_hs
            self.n_enterprises = x.n_enterprises
            self.positive_list = x.p.positive_list
        return 0


cdef int link_all(Ctx* x) noexcept nogil:
    """Every document to its order (join.pxd)."""
    cdef HashTable orders
    cdef KeySpec okey
    cdef int rc
    orders.slots = NULL
    orders.keys = NULL
    rc = link_orders(x, &orders, &okey)
    if rc == 0:
        link_payments(x, &orders, &okey)
        if x.p.inventory_rules:
            link_inventories(x, &orders, &okey)
        rc = link_lines(x, &orders, &okey)
    if rc == 0:
        rc = link_waybills(x, &orders, &okey)
    table_free(&orders)
    return rc


cdef enum:
    EVALUATE_BLOCK = 1024  # orders a thread takes at a time
    PREFETCH_DISTANCE = 8  # orders between the two prefetch stages, and between the 2nd and use


cdef void evaluate_block(Ctx* x, int64_t start, int64_t end) noexcept nogil:
    """evaluate_order over rows start..end-1, software-pipelined: an order's documents (views,
    values) are asked for 2 * PREFETCH_DISTANCE orders ahead and the out-of-line bytes those
    views point at PREFETCH_DISTANCE orders ahead, so each miss has time to arrive."""
    cdef int64_t i, count
    for i in range(start, min(start + 2 * PREFETCH_DISTANCE, end)):
        prefetch_documents(x, i)
    for i in range(start, min(start + PREFETCH_DISTANCE, end)):
        prefetch_document_strings(x, i)
    for i in range(start, end):
        if i + 2 * PREFETCH_DISTANCE < end:
            prefetch_documents(x, i + 2 * PREFETCH_DISTANCE)
        if i + PREFETCH_DISTANCE < end:
            prefetch_document_strings(x, i + PREFETCH_DISTANCE)
        evaluate_order(x, i, &count)
        x.subject_start[i] = count


cdef bint run_is_cached(const Ctx* x) noexcept nogil:
    """Every table the evaluation reads is small enough to stay in cache (a stream's
    micro-batch): prefetching would cost more instructions than the misses it hides."""
    return x.n_orders <= EVALUATE_BLOCK and \
        x.n_payments + x.n_waybills + x.n_items + x.n_inventories <= CACHED_ROWS


cdef void evaluate_all(Ctx* x) noexcept nogil:
    """Pass 1: every rule but the annual limit; subject_start[i] = order i's subject rows."""
    cdef int64_t b, i, count, nblocks = (x.n_orders + EVALUATE_BLOCK - 1) // EVALUATE_BLOCK
    cdef Recent recent[RECENT_SLOTS]
    if run_is_cached(x):  # one block, on this thread
        for i in range(RECENT_SLOTS):
            recent[i].len = -1
        x.recent = recent
        for i in range(x.n_orders):
            evaluate_order(x, i, &count)
            x.subject_start[i] = count
        x.recent = NULL  # (this stack frame's)
        return
    # Dynamic: a thread that loses its core (busy machine) does not hold the pass back.
    for b in prange(nblocks, schedule="dynamic", num_threads=x.threads):
        evaluate_block(x, b * EVALUATE_BLOCK, min((b + 1) * EVALUATE_BLOCK, x.n_orders))


cdef void write_all_subjects(Ctx* x) noexcept nogil:
    cdef int64_t i
    for i in prange(x.n_orders, schedule="dynamic", chunksize=2048, num_threads=x.threads):
        if x.subject_start[i + 1] > x.subject_start[i]:
            write_subjects(x, i)


ctypedef fused filled_t:
    int32_t
    int64_t


cdef void fill(filled_t* values, int64_t n, filled_t value, int threads) noexcept nogil:
    """values[0:n] = value, on every thread: touching fresh pages (faults, zeroing) is most of
    the cost, and it splits."""
    cdef int64_t i
    if threads == 1:  # (entering a parallel region costs more than a micro-batch's fill)
        for i in range(n):
            values[i] = value
        return
    for i in prange(n, schedule="static", num_threads=threads):
        values[i] = value


cdef int64_t offsets_from_counts(int64_t* counts, int64_t n) noexcept nogil:
    """counts[0..n) -> exclusive prefix sums in place, counts[n] = total."""
    cdef int64_t i, total = 0, c
    for i in range(n):
        c = counts[i]
        counts[i] = total
        total += c
    counts[n] = total
    return total


cdef int walk_annual(Ctx* x, Walk* w) noexcept nogil:
    """Pass 2 (SPEC §3.1): buyers through a hash table, then the walk (w's buyer_first,
    group_start and group_rows are its room). -1 if out of memory."""
    cdef KeySpec bkey, lkey
    cdef HashTable buyers, ledger
    cdef uint64_t* hashes = <uint64_t*>malloc(<size_t>(x.n_orders + x.n_ledger + 1) * sizeof(uint64_t))
    cdef int32_t* ledger_first = <int32_t*>malloc(<size_t>(x.n_ledger + 1) * sizeof(int32_t))
    cdef int rc = 0
    cdef int64_t i
    if hashes == NULL or ledger_first == NULL:
        free(hashes)
        free(ledger_first)
        return -1
    bkey.s0 = x.cols + O_BUYER_ID_NUMBER
    bkey.s1 = NULL
    bkey.i0 = NULL
    lkey.s0 = x.cols + Q_BUYER_ID_NUMBER
    lkey.s1 = NULL
    lkey.i0 = x.cols + Q_YEAR
    w.ledger_key = &lkey
    w.ledger = &ledger if x.n_ledger > 0 else NULL
    ledger.slots, ledger.keys = NULL, NULL  # freed below even when an earlier step failed
    rc = table_build(&buyers, &bkey, x.n_orders, hashes, <int32_t*>w.buyer_first, x.part_bits,
                     x.threads)
    table_free(&buyers)
    if rc == 0:
        rc = group_rows(w.buyer_first, x.n_orders, x.n_orders, <int64_t*>w.group_start,
                        <int32_t*>w.group_rows, x.threads)
    if rc == 0 and x.n_ledger > 0:
        rc = table_build(&ledger, &lkey, x.n_ledger, hashes, ledger_first, 0, 1)
    if rc == 0:
        rc = annual_walk(x, w)
    if x.n_ledger > 0:
        table_free(&ledger)
    if rc == 0 and (x.p.enabled_mask >> ANNUAL_RULE) & 1:
        for i in range(x.n_orders):
            if w.annual_fails[i]:
                x.mask[i] |= (<uint64_t>1) << ANNUAL_RULE
    w.ledger_key = NULL  # (on this stack frame)
    w.ledger = NULL
    free(hashes)
    free(ledger_first)
    return rc


cdef class Workspace:
    """The run's arrays that no output keeps (linking, grouping, the walk's room), zeroed, in
    one allocation: for a micro-batch, making each a NumPy array costs more than the run."""

    cdef char* base
    cdef size_t used, size

    def __cinit__(self, Py_ssize_t size):
        if size < 0:  # (also keeps gcc from seeing a calloc of SIZE_MAX on the error path)
            raise ValueError("negative workspace size")
        self.base = <char*>calloc(<size_t>size, 1)
        if self.base == NULL and size > 0:
            raise MemoryError()
        self.used = 0
        self.size = <size_t>size

    def __dealloc__(self):
        free(self.base)

    cdef void* take(self, size_t nbytes) noexcept:
        """The next `nbytes` (rounded up to 8, so every array stays aligned)."""
        cdef void* p = self.base + self.used
        self.used += (nbytes + 7) & ~(<size_t>7)
        return p


def run(list columns, dict sizes, dict params, int threads=2,
        PreparedReferences references=None):
    """Run the kernel over imported columns (ArrowColumn per COLUMNS entry).

    `sizes` has the row counts ("orders", ...), `params` the rule parameters and masks. Returns
    a dict of NumPy arrays; INT64_MIN marks null in the nullable int64 outputs. `references`
    keeps the reference tables' lookup tables between runs (built when they do not fit).
    """
    cdef Ctx x
    cdef Walk w
    cdef int64_t i, n_subjects, f
    cdef int rc = 0
    cdef bint prepare
    cdef ArrowColumn column
    cdef Workspace room
    cdef int32_t* order_copies
    cdef int32_t* payment_count
    cdef int32_t* waybill_count
    cdef int32_t* item_count
    cdef double clock[8]
    if len(columns) != N_COLUMNS:
        raise ValueError(f"expected {N_COLUMNS} columns, got {len(columns)}")
    memset(&x, 0, sizeof(Ctx))
    memset(&w, 0, sizeof(Walk))
    x.cols = <Col*>malloc(N_COLUMNS * sizeof(Col))
    if x.cols == NULL:
        raise MemoryError()
    for i in range(N_COLUMNS):
        column = columns[i]
        x.cols[i] = column.col
    x.n_orders = sizes["orders"]
    x.n_payments = sizes["payments"]
    x.n_waybills = sizes["waybills"]
    x.n_items = sizes["order_items"]
    x.n_inventories = sizes["inventories"]
    x.n_products = sizes["products"]
    x.n_hs = sizes["hs_lists"]
    x.n_enterprises = sizes["enterprises"]
    x.n_ledger = sizes["quota_ledger"]
    x.p.amount_tolerance = params["amount_tolerance"]
    x.p.tax_tolerance = params["tax_tolerance"]
    x.p.single_limit = params["single_limit"]
    x.p.annual_limit = params["annual_limit"]
    x.p.arrival_window_us = params["arrival_window_us"]
    x.p.tax_discount = params["tax_discount"]
    x.p.enabled_mask = params["enabled_mask"]
    x.p.reject_mask = params["reject_mask"]
    x.p.inventory_rules = params["inventory_rules"]
    x.p.positive_list = params["positive_list"]
    x.threads = max(threads, 1)
    x.part_bits = 0
    while (1 << x.part_bits) < x.threads:
        x.part_bits += 1

    n = x.n_orders
    cdef size_t per_order = <size_t>(n + 2)
    # 10 int32 and 2 int64 arrays of an order row each, the order lines, the walk's failures;
    # the few with another start value than 0 are filled below, by all threads.
    room = Workspace(per_order * (10 * 4 + 2 * 8 + 1) + <size_t>(x.n_items + 1) * 4 + 15 * 8)
    x.order_first = <int32_t*>room.take(per_order * 4)
    x.copies = <int32_t*>room.take(per_order * 4)
    x.pay_count = <int32_t*>room.take(per_order * 4)
    x.pay_last = <int32_t*>room.take(per_order * 4)
    x.wb_count = <int32_t*>room.take(per_order * 4)
    x.wb_last = <int32_t*>room.take(per_order * 4)
    x.inv_of = <int32_t*>room.take(per_order * 4)
    x.line_start = <int64_t*>room.take(per_order * 8)
    x.line_rows = <int32_t*>room.take(<size_t>(x.n_items + 1) * 4)
    w.buyer_first = <int32_t*>room.take(per_order * 4)
    w.group_rows = <int32_t*>room.take(per_order * 4)
    w.group_start = <int64_t*>room.take(per_order * 8)
    w.annual_fails = <uint8_t*>room.take(per_order)
    # Outputs: each exactly as long as its table (no slice to take afterwards).
    arrays = {
        "pay_order": np.empty(x.n_payments, dtype=np.int32),
        "item_order": np.empty(x.n_items, dtype=np.int32),
        "inv_order": np.empty(x.n_inventories, dtype=np.int32),
        "wb_linked": np.zeros(x.n_waybills, dtype=np.uint8),
        "reason_mask": np.zeros(n, dtype=np.uint64),
        "payment_row": np.zeros(n, dtype=np.int64),
        "waybill_row": np.zeros(n, dtype=np.int64),
        "inventory_row": np.zeros(n, dtype=np.int64),
        "items_total": np.zeros(n, dtype=np.int64),
        "computed_tax": np.zeros(n, dtype=np.int64),
        "limit_value": np.zeros(n, dtype=np.int64),
        "annual_spent": np.empty(n, dtype=np.int64),
        "subject_start": np.zeros(n + 2, dtype=np.int64),
        "order_copies": np.empty(n, dtype=np.int32),
        "payment_count": np.empty(n, dtype=np.int32),
        "waybill_count": np.empty(n, dtype=np.int32),
        "item_count": np.empty(n, dtype=np.int32),
        "ledger_buyer_row": np.empty(n, dtype=np.int32),
        "ledger_year": np.zeros(n, dtype=np.int64),
        "ledger_used": np.zeros(n, dtype=np.int64),
        "ledger_matched": np.zeros(x.n_ledger, dtype=np.uint8),
    }
    x.pay_order = <int32_t*>ptr(arrays["pay_order"])
    x.item_order = <int32_t*>ptr(arrays["item_order"])
    x.inv_order = <int32_t*>ptr(arrays["inv_order"])
    x.wb_linked = <uint8_t*>ptr(arrays["wb_linked"])
    if references is None:
        references = PreparedReferences()
    reference_keys(&x)
    prepare = not references.fits(columns, &x)
    if prepare:
        references.clear(&x)
    else:
        references.lend(&x)
    x.mask = <uint64_t*>ptr(arrays["reason_mask"])
    x.payment_row = <int64_t*>ptr(arrays["payment_row"])
    x.waybill_row = <int64_t*>ptr(arrays["waybill_row"])
    x.inventory_row = <int64_t*>ptr(arrays["inventory_row"])
    x.items_total = <int64_t*>ptr(arrays["items_total"])
    x.computed_tax = <int64_t*>ptr(arrays["computed_tax"])
    x.limit_value = <int64_t*>ptr(arrays["limit_value"])
    x.annual_spent = <int64_t*>ptr(arrays["annual_spent"])
    x.subject_start = <int64_t*>ptr(arrays["subject_start"])
    order_copies = <int32_t*>ptr(arrays["order_copies"])
    payment_count = <int32_t*>ptr(arrays["payment_count"])
    waybill_count = <int32_t*>ptr(arrays["waybill_count"])
    item_count = <int32_t*>ptr(arrays["item_count"])
    w.annual_limit = x.p.annual_limit
    w.skip_mask = x.p.reject_mask & ~((<uint64_t>1) << ANNUAL_RULE)
    w.ledger_buyer_row = <int32_t*>ptr(arrays["ledger_buyer_row"])
    w.ledger_year = <int64_t*>ptr(arrays["ledger_year"])
    w.ledger_used = <int64_t*>ptr(arrays["ledger_used"])
    w.ledger_matched = <uint8_t*>ptr(arrays["ledger_matched"])
    try:
        with nogil:
            clock[0] = openmp.omp_get_wtime()
            if prepare:
                rc = prepare_enterprises(&x)
                if rc == 0:
                    rc = prepare_products(&x)
            clock[1] = openmp.omp_get_wtime()
        if prepare:
            references.adopt(&x, columns, rc == 0)
        with nogil:
            fill(x.pay_last, x.n_orders + 1, <int32_t>-1, x.threads)
            fill(x.wb_last, x.n_orders + 1, <int32_t>-1, x.threads)
            fill(x.inv_of, x.n_orders + 1, <int32_t>-1, x.threads)
            fill(x.annual_spent, x.n_orders, <int64_t>INT64_MIN, x.threads)
            fill(w.ledger_buyer_row, x.n_orders, <int32_t>-1, x.threads)
            if rc == 0:
                rc = link_all(&x)
            clock[2] = openmp.omp_get_wtime()
            if rc == 0:
                evaluate_all(&x)
                n_subjects = offsets_from_counts(x.subject_start, x.n_orders)
            clock[3] = openmp.omp_get_wtime()
        if rc != 0:
            raise MemoryError()
        subjects = {
            "order_row": np.empty(n_subjects, dtype=np.int64),
            "rule": np.empty(n_subjects, dtype=np.uint8),
            "party": np.empty(n_subjects, dtype=np.int8),
            "line_row": np.empty(n_subjects, dtype=np.int64),
            "variant": np.empty(n_subjects, dtype=np.uint8),
        }
        x.s_order_row = <int64_t*>ptr(subjects["order_row"])
        x.s_rule = <uint8_t*>ptr(subjects["rule"])
        x.s_party = <int8_t*>ptr(subjects["party"])
        x.s_line_row = <int64_t*>ptr(subjects["line_row"])
        x.s_variant = <uint8_t*>ptr(subjects["variant"])
        with nogil:
            write_all_subjects(&x)
            clock[4] = openmp.omp_get_wtime()
            rc = walk_annual(&x, &w)
            clock[5] = openmp.omp_get_wtime()
            # Per order row, its key's counts (read at the key's first row).
            for i in range(x.n_orders):
                f = x.order_first[i]
                order_copies[i] = x.copies[f]
                payment_count[i] = x.pay_count[f]
                waybill_count[i] = x.wb_count[f]
                item_count[i] = <int32_t>(x.line_start[f + 1] - x.line_start[f])
        if rc != 0:
            raise MemoryError()
    finally:
        free(x.cols)  # the reference tables are `references`' to free

    del arrays["subject_start"]
    arrays["subjects"] = subjects
    arrays["timings"] = {
        "reference_tables": clock[1] - clock[0], "link": clock[2] - clock[1],
        "evaluate": clock[3] - clock[2], "subjects": clock[4] - clock[3],
        "annual": clock[5] - clock[4],
    }
    return arrays


def key_hashes_test(ArrowColumn first, ArrowColumn second=None):
    """The kernel's key hash of every row of one or two string columns, for tests."""
    cdef KeySpec k
    cdef KeyVal v
    cdef int64_t row, n = first.col.length
    out = np.zeros(n, dtype=np.uint64)
    cdef uint64_t* hashes = <uint64_t*>ptr(out)
    k.s0 = &first.col
    k.s1 = &second.col if second is not None else NULL
    k.i0 = NULL
    for row in range(n):
        v = key_at(&k, row)
        hashes[row] = key_hash(&v)
    return out
