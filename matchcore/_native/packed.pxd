# cython: language_level=3
"""What src_ext/flush.pyx calls of src_ext/packed.pyx in C, declared here, in the package (as
matchcore/_native/slots.pxd is), so that it `cimport`s it: a walk place read with no Python
call and no 96-bit int made and read back."""

from libc.stdint cimport int64_t


cdef bint app_time_of(bytes rows, Py_ssize_t time_at, int64_t* time, int64_t* year) except -1
