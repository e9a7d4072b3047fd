/* A MinHash signature in C: transforms/minhash.py ``MinHasher.signature``, the same bytes.
 *
 * Per word its CRC-32 (zlib's: reflected polynomial 0xEDB88320, start and final xor 0xFFFFFFFF); per
 * shingle of k words sum(crc[i + j] * position[j]) modulo 2**64, then x ^= x >> 31; per permutation p
 * the minimum over the shingles of a[p] * x + b[p] modulo 2**64; bits 32..47 of each minimum, as
 * little-endian 16-bit values. A text without words has the one shingle 0. Unsigned 64-bit arithmetic
 * in C wraps modulo 2**64 as numpy's uint64 arrays do (tests/test_minhash.py compares both paths).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static uint32_t crc_table[256];

static void
make_crc_table(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t
crc32_of(const unsigned char *data, Py_ssize_t length)
{
    uint32_t c = 0xFFFFFFFFu;
    for (Py_ssize_t i = 0; i < length; i++)
        c = crc_table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

PyDoc_STRVAR(signature_doc,
"signature(words, a, b, position) -> bytes\n\n"
"The MinHash signature of a text's ``words`` (a list of bytes): ``a`` and ``b`` the permutations'\n"
"multipliers and offsets, ``position`` the k shingle multipliers (uint64 buffers); len(a) 16-bit\n"
"minima, little-endian.");

static PyObject *
signature(PyObject *self, PyObject *args)
{
    PyObject *words;
    Py_buffer a, b, position;
    PyObject *result = NULL;
    uint64_t *hashes = NULL, *shingles = NULL;

    if (!PyArg_ParseTuple(args, "O!y*y*y*", &PyList_Type, &words, &a, &b, &position))
        return NULL;
    Py_ssize_t perms = a.len / 8, k_max = position.len / 8, count = PyList_GET_SIZE(words);
    if (perms <= 0 || a.len % 8 || b.len != a.len || k_max <= 0 || position.len % 8) {
        PyErr_SetString(PyExc_ValueError, "signature: buffers of the wrong sizes");
        goto done;
    }
    {
        const uint64_t *pa = (const uint64_t *)a.buf, *pb = (const uint64_t *)b.buf;
        const uint64_t *pos = (const uint64_t *)position.buf;
        Py_ssize_t n;
        hashes = PyMem_Malloc(sizeof(uint64_t) * (count ? count : 1));
        shingles = PyMem_Malloc(sizeof(uint64_t) * (count ? count : 1));
        if (hashes == NULL || shingles == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *word = PyList_GET_ITEM(words, i);
            if (!PyBytes_Check(word)) {
                PyErr_SetString(PyExc_TypeError, "signature: words must be bytes");
                goto done;
            }
            hashes[i] = crc32_of((const unsigned char *)PyBytes_AS_STRING(word), PyBytes_GET_SIZE(word));
        }
        if (count == 0) {
            shingles[0] = 0;  /* the one shingle of an empty text (not hashed) */
            n = 1;
        } else {
            Py_ssize_t k = k_max < count ? k_max : count;
            n = count - k + 1;
            for (Py_ssize_t i = 0; i < n; i++) {
                uint64_t x = hashes[i] * pos[0];
                for (Py_ssize_t j = 1; j < k; j++)
                    x += hashes[i + j] * pos[j];
                shingles[i] = x ^ (x >> 31);
            }
        }
        result = PyBytes_FromStringAndSize(NULL, perms * 2);
        if (result == NULL)
            goto done;
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
        for (Py_ssize_t p = 0; p < perms; p++) {
            uint64_t mul = pa[p], add = pb[p], least = UINT64_MAX;
            for (Py_ssize_t i = 0; i < n; i++) {
                uint64_t v = mul * shingles[i] + add;
                if (v < least)
                    least = v;
            }
            uint16_t bits = (uint16_t)(least >> 32);
            out[2 * p] = (unsigned char)(bits & 0xFF);
            out[2 * p + 1] = (unsigned char)(bits >> 8);
        }
    }
done:
    PyMem_Free(hashes);
    PyMem_Free(shingles);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    PyBuffer_Release(&position);
    return result;
}

static PyMethodDef methods[] = {
    {"signature", signature, METH_VARARGS, signature_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_minhash_signature",
    "MinHash signatures in C (transforms/minhash.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__minhash_signature(void)
{
    make_crc_table();
    return PyModule_Create(&module);
}
