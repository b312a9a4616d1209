// Python side of the KB_PROBE_KIND=cuda test module (limited API 3.9).
#include <Python.h>

#include <exception>

double kb_cuda_add_one(int n);

namespace {
PyObject* py_add_one(PyObject*, PyObject* args) {
  int n;
  if (!PyArg_ParseTuple(args, "i", &n)) return nullptr;
  try {
    return PyFloat_FromDouble(kb_cuda_add_one(n));
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_RuntimeError, error.what());
    return nullptr;
  }
}

PyMethodDef methods[] = {
    {"add_one", py_add_one, METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, KB_MODULE_NAME_STR, nullptr, -1, methods,
                          nullptr, nullptr, nullptr, nullptr};
}  // namespace

#define KB_CONCAT2(a, b) a##b
#define KB_CONCAT(a, b) KB_CONCAT2(a, b)
PyMODINIT_FUNC KB_CONCAT(PyInit_, KB_MODULE_NAME)(void) { return PyModule_Create(&module_def); }
