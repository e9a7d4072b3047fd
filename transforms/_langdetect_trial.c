/* One trial of langdetect's detector (langdetect/detector.py ``_detect_block``), in C.
 *
 * transforms/langdetect_np.py finds a trial's draws (the weight row of each random n-gram) and calls
 * ``trial`` to run the trial's updates on them. The arithmetic is stock langdetect's, in its order:
 * every update multiplies each probability by (weight + the n-gram's weight for that language); after
 * updates 0, 5, 10 ... the probabilities are summed left to right (CPython 3.11's ``sum`` of floats:
 * one double, added in order), each is divided by the sum, and the trial ends when the largest
 * quotient passes the threshold or the update count reaches the limit. Built without contracting
 * a*b+c into fused multiply-adds (-ffp-contract=off, setup.py): the same IEEE-754 double operations
 * as Python's, so the same bits (tests/test_langdetect_np.py compares with stock langdetect).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

PyDoc_STRVAR(trial_doc,
"trial(weights, drawn, prob, weight, threshold, limit, start) -> int\n\n"
"Run updates start, start+1, ... of one trial on ``prob`` (float64, one per language, changed in\n"
"place). ``weights``: float64 rows of len(prob) values (C order); ``drawn``: the row of every draw\n"
"(intp). Returns the number of updates the trial made (its last update + 1) when it ends, or\n"
"-(i + 1) when it needs draw i and ``drawn`` has only i draws (call again with more, start=i).");

static PyObject *
trial(PyObject *self, PyObject *args)
{
    Py_buffer weights, drawn, prob;
    double weight, threshold;
    Py_ssize_t limit, start;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "y*y*w*ddnn", &weights, &drawn, &prob, &weight, &threshold, &limit, &start))
        return NULL;
    Py_ssize_t size = prob.len / (Py_ssize_t)sizeof(double);
    if (size <= 0 || prob.len % (Py_ssize_t)sizeof(double) || drawn.len % (Py_ssize_t)sizeof(Py_ssize_t)
            || weights.len % (size * (Py_ssize_t)sizeof(double)) || start < 0) {
        PyErr_SetString(PyExc_ValueError, "trial: buffers of the wrong sizes");
        goto done;
    }
    {
        const double *w = (const double *)weights.buf;
        const Py_ssize_t *rows = (const Py_ssize_t *)drawn.buf;
        double *p = (double *)prob.buf;
        Py_ssize_t ndrawn = drawn.len / (Py_ssize_t)sizeof(Py_ssize_t);
        Py_ssize_t nrows = weights.len / (size * (Py_ssize_t)sizeof(double));
        Py_ssize_t i = start, j, answer;

        for (;;) {
            if (i >= ndrawn) {
                answer = -(i + 1);
                break;
            }
            Py_ssize_t row = rows[i];
            if (row < 0 || row >= nrows) {
                PyErr_SetString(PyExc_IndexError, "trial: a draw outside the weights");
                goto done;
            }
            const double *f = w + row * size;
            for (j = 0; j < size; j++)
                p[j] *= weight + f[j];
            if (i % 5 == 0) {
                double sum = 0.0, maxp = 0.0;
                for (j = 0; j < size; j++)
                    sum += p[j];
                for (j = 0; j < size; j++) {
                    double q = p[j] / sum;
                    if (maxp < q)
                        maxp = q;
                    p[j] = q;
                }
                if (maxp > threshold || i >= limit) {
                    answer = i + 1;
                    break;
                }
            }
            i++;
        }
        result = PyLong_FromSsize_t(answer);
    }
done:
    PyBuffer_Release(&weights);
    PyBuffer_Release(&drawn);
    PyBuffer_Release(&prob);
    return result;
}

static PyMethodDef methods[] = {
    {"trial", trial, METH_VARARGS, trial_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_langdetect_trial",
    "One langdetect trial in C (transforms/langdetect_np.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__langdetect_trial(void)
{
    return PyModule_Create(&module);
}
