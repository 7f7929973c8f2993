# cython: language_level=3
"""The fields of msgspec Structs read in place: a Struct holds each field in a slot of its
instances, at the offset its member descriptor knows (a generic attribute access, a type
lookup and a descriptor call, costs some twenty times as much)."""

from cpython.object cimport Py_TYPE, PyTypeObject
from cpython.ref cimport PyObject


cdef extern from "Python.h":
    PyTypeObject PyMemberDescr_Type
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
        int flags
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member


cdef extern from "structmember.h":
    enum:
        T_OBJECT_EX  # a member holding an object (AttributeError when unset)
        READONLY


cdef inline PyMemberDef* object_member(object kind, str name) except NULL:
    """The member of `kind` (a msgspec Struct type) that holds its field `name`; TypeError
    when the field is not held in a slot of objects."""
    descriptor = getattr(kind, name)
    if Py_TYPE(descriptor) != &PyMemberDescr_Type:
        raise TypeError(f"{kind.__name__}.{name} is not a field held in a slot")
    cdef PyMemberDef* member = (<PyMemberDescrObject*>descriptor).d_member
    if member.type != T_OBJECT_EX:
        raise TypeError(f"{kind.__name__}.{name} is not a field holding an object")
    return member


cdef inline PyObject* field_at(object obj, Py_ssize_t offset) noexcept:
    """The field at `offset` of `obj` (of the type the offset is of), borrowed; NULL: unset."""
    return (<PyObject**>(<char*><PyObject*>obj + offset))[0]
