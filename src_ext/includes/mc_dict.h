/* Dict lookups and stores by a key whose hash is already known: the stream matcher's key
   tuples are hashed anew on every lookup (a tuple keeps no hash), ~120 instructions each.
   CPython 3.13 made the store and membership test private: there they hash again. */
#ifndef MATCHCORE_DICT_H
#define MATCHCORE_DICT_H
#include <Python.h>

/* d.get(key, otherwise): a new reference, NULL on an error. */
static inline PyObject* mc_dict_get_or(
    PyObject* d, PyObject* key, Py_hash_t hash, PyObject* otherwise) {
  PyObject* found = _PyDict_GetItem_KnownHash(d, key, hash);
  if (found == NULL) {
    if (PyErr_Occurred()) return NULL;
    found = otherwise;
  }
  Py_INCREF(found);
  return found;
}

/* d.get(key): None when missing. */
#define mc_dict_get(d, key, hash) mc_dict_get_or((d), (key), (hash), Py_None)

#if PY_VERSION_HEX < 0x030D0000
#define mc_dict_set(d, key, value, hash) _PyDict_SetItem_KnownHash((d), (key), (value), (hash))
#define mc_dict_contains(d, key, hash) _PyDict_Contains_KnownHash((d), (key), (hash))
#else
#define mc_dict_set(d, key, value, hash) PyDict_SetItem((d), (key), (value))
#define mc_dict_contains(d, key, hash) PyDict_Contains((d), (key))
#endif

#endif
