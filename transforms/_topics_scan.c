/* Topic matching in C: transforms/topics.py's text analysis, automaton passes and the simple checks of their
 * hits, with the same answers as its pure-Python path (ahocorasick_rs and the loop of ``_TermTable._scan``);
 * tests/test_topics.py runs both paths (the ``scan_path`` fixture) and bench/topics_equivalence.py compares them.
 *
 * ``lower_latin1(text, flags)``: ``text.lower()`` as Latin-1 bytes, "?" for any character outside Latin-1
 * (exactly ``text.encode("latin-1", "replace").translate(_LATIN1_LOWER)``), and how many characters are
 * outside Latin-1; None when ``text`` holds one of the characters of ``flags`` (the case exceptions and
 * ``_LOWER_SPECIAL``: the caller then takes another path). ``latin1(text)``: ``text.encode("latin-1",
 * "replace")``.
 *
 * ``Automaton(keys, flags, whole, tail, fwhole, ftail, rest, space, near)``: an Aho-Corasick DFA over classes
 * of the characters of ``keys`` (distinct, all bytes or all str of the Basic Multilingual Plane, at most 255
 * distinct characters). A pass reports every key at every position where it ends, as ahocorasick_rs's
 * ``find_matches_as_indexes(..., overlapping=True)`` does (order aside); a byte haystack of 256 bytes or more is
 * walked in four segments side by side (see run()).
 *   ``starts(haystack)``: ``{key number: [start, ...]}`` of every hit.
 *   ``scan(haystack, raw, found, lowered)``: the hits' checks; adds matches to the dict ``found`` (its span
 *   lists sorted) and returns ``pending``, the hits left to Python. For a hit of key k at ``at:end``
 *   (``inside``: ``raw[at - 1]`` is a word character, ``str.isalnum() or "_"``, i.e. ``re``'s ``\w``):
 *   - bit 0 of ``flags[k]``: every term of the key needs a word start: a hit inside a word is dropped;
 *   - at a word start, each term of ``whole[k]`` (its key alone) gets ``(at, end)`` when no word character
 *     follows, each of ``tail[k]`` (its key and "*") ``(at, end of the word)``; ``fwhole[k]`` and ``ftail[k]``
 *     ("*key", "*key*") the same anywhere;
 *   - bit 1 of ``flags[k]`` (a key with characters outside Latin-1: which spelling is there is Python's to
 *     tell): ``(None, k, at, end, inside)`` goes to ``pending``;
 *   - otherwise each item ``(entry, kind, data)`` of ``rest[k]`` goes to ``pending`` as ``(entry, k, at, end,
 *     inside)`` unless a condition without which its term has no match there fails (see
 *     ``_TermTable._c_check``): 1 and 4 a word start, 1 and 5 the literal run ``data`` after the spaces
 *     (``space``: the bytes that can stand for a term's space) right after the key, 2 and 5 a decimal digit
 *     right before the spaces before the hit (at most ``near`` characters back), 3 every literal run of
 *     ``data`` within ``near`` characters of the hit in ``lowered`` (the lower-cased haystack, or None); kind
 *     6 ("# key", "# key*") is matched here (number_key()) and never pending.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WORD_START_ONLY 1
#define PENDING 2

static unsigned char lower_table[256];

static inline int
is_word(Py_UCS4 ch)
{
    return ch == '_' || Py_UNICODE_ISALNUM(ch);
}

PyDoc_STRVAR(lower_latin1_doc,
"lower_latin1(text, flags) -> (bytes, int) or None\n\n"
"``text`` lower-cased as Latin-1 bytes (\"?\" for other characters) and the number of characters outside\n"
"Latin-1; None when ``text`` holds a character of ``flags``.");

static PyObject *
lower_latin1(PyObject *self, PyObject *args)
{
    PyObject *text, *flags;
    if (!PyArg_ParseTuple(args, "UU", &text, &flags))
        return NULL;
    int16_t low[256];  /* the lower case of a Latin-1 character, or -1 for a flag character */
    for (int b = 0; b < 256; b++)
        low[b] = lower_table[b];
    Py_ssize_t nflags = PyUnicode_GET_LENGTH(flags), nhigh = 0;
    Py_UCS4 high[64];
    for (Py_ssize_t i = 0; i < nflags; i++) {
        Py_UCS4 ch = PyUnicode_READ_CHAR(flags, i);
        if (ch < 256)
            low[ch] = -1;
        else if (nhigh < 64)
            high[nhigh++] = ch;
        else {
            PyErr_SetString(PyExc_ValueError, "lower_latin1: more than 64 flag characters above Latin-1");
            return NULL;
        }
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL)
        return NULL;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t other = 0;
#define LOWER_LOOP(TYPE)                                                  \
    {                                                                     \
        const TYPE *s = (const TYPE *)data;                               \
        for (Py_ssize_t i = 0; i < n; i++) {                              \
            Py_UCS4 ch = s[i];                                            \
            if (ch < 256) {                                               \
                int16_t c = low[ch];                                      \
                if (c < 0)                                                \
                    goto flagged;                                         \
                o[i] = (unsigned char)c;                                  \
            }                                                             \
            else {                                                        \
                for (Py_ssize_t j = 0; j < nhigh; j++)                    \
                    if (high[j] == ch)                                    \
                        goto flagged;                                     \
                o[i] = '?';                                               \
                other++;                                                  \
            }                                                             \
        }                                                                 \
    }
    if (kind == PyUnicode_1BYTE_KIND)
        LOWER_LOOP(Py_UCS1)
    else if (kind == PyUnicode_2BYTE_KIND)
        LOWER_LOOP(Py_UCS2)
    else
        LOWER_LOOP(Py_UCS4)
#undef LOWER_LOOP
    PyObject *result = Py_BuildValue("(Nn)", out, other);
    return result;
flagged:
    Py_DECREF(out);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(latin1_doc,
"latin1(text) -> bytes\n\n"
"``text.encode(\"latin-1\", \"replace\")``: its Latin-1 characters as bytes, \"?\" for any other.");

static PyObject *
latin1(PyObject *self, PyObject *args)
{
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U", &text))
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (kind == PyUnicode_1BYTE_KIND)
        return PyBytes_FromStringAndSize((const char *)data, n);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL)
        return NULL;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *s = (const Py_UCS2 *)data;
        for (Py_ssize_t i = 0; i < n; i++)
            o[i] = s[i] < 256 ? (unsigned char)s[i] : '?';
    }
    else {
        const Py_UCS4 *s = (const Py_UCS4 *)data;
        for (Py_ssize_t i = 0; i < n; i++)
            o[i] = s[i] < 256 ? (unsigned char)s[i] : '?';
    }
    return out;
}

typedef struct {
    PyObject_HEAD
    int32_t nclasses, nstates, nkeys, max_len;
    unsigned char cls[256];
    int wide;                   /* keys are str: the pass reads a str (its code points) */
    unsigned char *blocks[256]; /* wide: classes of the code points 256 * b .. 256 * b + 255 (b > 0), or NULL */
    int32_t *delta;      /* nstates * nclasses: the next state's row offset (state number * nclasses) */
    int32_t first_out;   /* states from this row offset on have a key to report (they are numbered last) */
    int32_t *out_key;    /* per state: the key that ends there, or -1 */
    int32_t *dict_link;  /* per state: the nearest proper suffix state with a key, or -1 */
    int32_t *key_len;
    unsigned char *flags;
    PyObject *whole;     /* per key: tuple of term ids (Python ints) */
    PyObject *tail;
    PyObject *fwhole;    /* per key: the same for terms that start with "*" (no word start needed) */
    PyObject *ftail;
    PyObject *rest;      /* per key: tuple of (entry, kind, data), see Automaton_scan */
    unsigned char space[256];  /* bytes that can stand for a character of a term's space */
    Py_ssize_t near;
} Automaton;

static inline unsigned char
class_of(const Automaton *self, Py_UCS4 ch)
{
    if (ch < 256)
        return self->cls[ch];
    if (ch < 65536 && self->blocks[ch >> 8] != NULL)
        return self->blocks[ch >> 8][ch & 255];
    return 0;
}

/* Give ``ch`` a class of its own (if it has none): 0 on success, -1 with an exception set. */
static int
add_class(Automaton *self, Py_UCS4 ch, int32_t *nclasses)
{
    unsigned char *slot;
    if (ch < 256)
        slot = &self->cls[ch];
    else if (ch < 65536) {
        if (self->blocks[ch >> 8] == NULL) {
            self->blocks[ch >> 8] = PyMem_Calloc(256, 1);
            if (self->blocks[ch >> 8] == NULL) {
                PyErr_NoMemory();
                return -1;
            }
        }
        slot = &self->blocks[ch >> 8][ch & 255];
    }
    else {
        PyErr_SetString(PyExc_ValueError, "Automaton: a key character outside the Basic Multilingual Plane");
        return -1;
    }
    if (*slot == 0) {
        if (*nclasses > 255) {
            PyErr_SetString(PyExc_ValueError, "Automaton: more than 255 distinct key characters");
            return -1;
        }
        *slot = (unsigned char)(*nclasses)++;
    }
    return 0;
}

/* The length of a key (bytes or str) and its character i. */
static inline Py_ssize_t
key_length(PyObject *key)
{
    return PyBytes_Check(key) ? PyBytes_GET_SIZE(key) : PyUnicode_GET_LENGTH(key);
}

static inline Py_UCS4
key_char(PyObject *key, Py_ssize_t i)
{
    return PyBytes_Check(key) ? (unsigned char)PyBytes_AS_STRING(key)[i] : PyUnicode_READ_CHAR(key, i);
}

static void
Automaton_dealloc(Automaton *self)
{
    for (int b = 0; b < 256; b++)
        PyMem_Free(self->blocks[b]);
    PyMem_Free(self->delta);
    PyMem_Free(self->out_key);
    PyMem_Free(self->dict_link);
    PyMem_Free(self->key_len);
    PyMem_Free(self->flags);
    Py_XDECREF(self->whole);
    Py_XDECREF(self->tail);
    Py_XDECREF(self->rest);
    Py_XDECREF(self->fwhole);
    Py_XDECREF(self->ftail);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
check_groups(PyObject *groups, Py_ssize_t nkeys, const char *what)
{
    if (!PyTuple_Check(groups) || PyTuple_GET_SIZE(groups) != nkeys) {
        PyErr_Format(PyExc_TypeError, "Automaton: %s must be a tuple with one tuple per key", what);
        return -1;
    }
    for (Py_ssize_t k = 0; k < nkeys; k++)
        if (!PyTuple_Check(PyTuple_GET_ITEM(groups, k))) {
            PyErr_Format(PyExc_TypeError, "Automaton: %s[%zd] must be a tuple", what, k);
            return -1;
        }
    return 0;
}

static int
Automaton_init(Automaton *self, PyObject *args, PyObject *kwds)
{
    PyObject *keys, *whole, *tail, *fwhole, *ftail, *rest;
    Py_buffer flags, space;
    Py_ssize_t near;
    if (!PyArg_ParseTuple(args, "O!y*O!O!O!O!O!y*n", &PyTuple_Type, &keys, &flags, &PyTuple_Type, &whole,
                          &PyTuple_Type, &tail, &PyTuple_Type, &fwhole, &PyTuple_Type, &ftail, &PyTuple_Type,
                          &rest, &space, &near))
        return -1;
    int rc = -1;
    Py_ssize_t nkeys = PyTuple_GET_SIZE(keys), total = 1;
    int32_t *child = NULL;
    if (flags.len != nkeys) {
        PyErr_SetString(PyExc_ValueError, "Automaton: one flag byte per key");
        goto done;
    }
    if (check_groups(whole, nkeys, "whole") < 0 || check_groups(tail, nkeys, "tail") < 0
        || check_groups(fwhole, nkeys, "fwhole") < 0 || check_groups(ftail, nkeys, "ftail") < 0
        || check_groups(rest, nkeys, "rest") < 0)
        goto done;
    if (space.len != 256) {
        PyErr_SetString(PyExc_ValueError, "Automaton: space must have 256 bytes");
        goto done;
    }
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        PyObject *items = PyTuple_GET_ITEM(rest, k);
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(items); j++) {
            PyObject *item = PyTuple_GET_ITEM(items, j);
            long kind;
            if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3 || !PyLong_Check(PyTuple_GET_ITEM(item, 1))
                || (kind = PyLong_AsLong(PyTuple_GET_ITEM(item, 1))) < 0 || kind > 6
                || ((kind == 1 || kind == 5) && !PyBytes_Check(PyTuple_GET_ITEM(item, 2)))
                || (kind == 6 && !(PyTuple_Check(PyTuple_GET_ITEM(item, 2))
                                   && PyTuple_GET_SIZE(PyTuple_GET_ITEM(item, 2)) == 2))
                || (kind == 3 && !PyTuple_Check(PyTuple_GET_ITEM(item, 2)))) {
                PyErr_SetString(PyExc_TypeError, "Automaton: rest items are (entry, kind 0-6, data)");
                goto done;
            }
            if (kind == 3) {
                PyObject *runs = PyTuple_GET_ITEM(item, 2);
                for (Py_ssize_t r = 0; r < PyTuple_GET_SIZE(runs); r++)
                    if (!PyBytes_Check(PyTuple_GET_ITEM(runs, r))) {
                        PyErr_SetString(PyExc_TypeError, "Automaton: search runs are bytes");
                        goto done;
                    }
            }
        }
    }
    memcpy(self->space, space.buf, 256);
    self->near = near;
    memset(self->cls, 0, sizeof self->cls);
    for (int b = 0; b < 256; b++) {
        PyMem_Free(self->blocks[b]);
        self->blocks[b] = NULL;
    }
    self->wide = nkeys > 0 && PyUnicode_Check(PyTuple_GET_ITEM(keys, 0));
    int32_t nclasses = 1;  /* class 0: a character of no key */
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        PyObject *key = PyTuple_GET_ITEM(keys, k);
        if (!(self->wide ? PyUnicode_Check(key) : PyBytes_Check(key)) || key_length(key) == 0) {
            PyErr_SetString(PyExc_TypeError, "Automaton: keys must be non-empty, all bytes or all str");
            goto done;
        }
        for (Py_ssize_t i = 0; i < key_length(key); i++)
            if (add_class(self, key_char(key, i), &nclasses) < 0)
                goto done;
        total += key_length(key);
    }
    if (total > INT32_MAX / nclasses) {
        PyErr_SetString(PyExc_OverflowError, "Automaton: too many keys");
        goto done;
    }
    self->nclasses = nclasses;
    self->nkeys = (int32_t)nkeys;
    self->max_len = 0;
    child = PyMem_Malloc(sizeof(int32_t) * total * nclasses);
    self->out_key = PyMem_Malloc(sizeof(int32_t) * total);
    self->dict_link = PyMem_Malloc(sizeof(int32_t) * total);
    self->key_len = PyMem_Malloc(sizeof(int32_t) * (nkeys ? nkeys : 1));
    self->flags = PyMem_Malloc(nkeys ? nkeys : 1);
    int32_t *fail = PyMem_Malloc(sizeof(int32_t) * total), *queue = PyMem_Malloc(sizeof(int32_t) * total);
    if (!child || !self->out_key || !self->dict_link || !self->key_len || !self->flags || !fail || !queue) {
        PyMem_Free(fail);
        PyMem_Free(queue);
        PyErr_NoMemory();
        goto done;
    }
    memcpy(self->flags, flags.buf, nkeys);
    for (Py_ssize_t i = 0; i < total * nclasses; i++)
        child[i] = -1;
    int32_t nstates = 1;
    self->out_key[0] = -1;
    for (Py_ssize_t k = 0; k < nkeys; k++) {  /* the trie */
        PyObject *key = PyTuple_GET_ITEM(keys, k);
        int32_t state = 0;
        for (Py_ssize_t i = 0; i < key_length(key); i++) {
            int32_t *slot = &child[(Py_ssize_t)state * nclasses + class_of(self, key_char(key, i))];
            if (*slot < 0) {
                self->out_key[nstates] = -1;
                *slot = nstates++;
            }
            state = *slot;
        }
        if (self->out_key[state] >= 0) {
            PyMem_Free(fail);
            PyMem_Free(queue);
            PyErr_SetString(PyExc_ValueError, "Automaton: keys must be distinct");
            goto done;
        }
        self->out_key[state] = (int32_t)k;
        self->key_len[k] = (int32_t)key_length(key);
        if (self->key_len[k] > self->max_len)
            self->max_len = self->key_len[k];
    }
    /* Breadth first: failure links, the links to the nearest suffix with a key, and the missing moves
     * (the failure state's move; class 0, no key's byte, always leads to the root). */
    Py_ssize_t head = 0, tail_q = 0;
    fail[0] = 0;
    self->dict_link[0] = -1;
    for (int32_t c = 0; c < nclasses; c++) {
        int32_t v = child[c];
        if (v < 0)
            child[c] = 0;
        else {
            fail[v] = 0;
            self->dict_link[v] = -1;
            queue[tail_q++] = v;
        }
    }
    while (head < tail_q) {
        int32_t u = queue[head++];
        for (int32_t c = 0; c < nclasses; c++) {
            int32_t *slot = &child[(Py_ssize_t)u * nclasses + c];
            int32_t via = child[(Py_ssize_t)fail[u] * nclasses + c];
            if (*slot < 0)
                *slot = via;
            else {
                int32_t v = *slot;
                fail[v] = via;
                self->dict_link[v] = self->out_key[via] >= 0 ? via : self->dict_link[via];
                queue[tail_q++] = v;
            }
        }
    }
    /* Renumber: the states with a key to report (their own, or a suffix's) last, so the pass tells them by
     * one comparison; the root (no key: keys are not empty) stays 0; otherwise breadth first (the shallow
     * states, where a pass spends most of its time, close together). Then the moves as row offsets. */
    int32_t *number = fail, nplain = 1;
    number[0] = 0;
    for (Py_ssize_t q = 0; q < tail_q; q++)
        if (self->out_key[queue[q]] < 0 && self->dict_link[queue[q]] < 0)
            number[queue[q]] = nplain++;
    int32_t next = nplain;
    for (Py_ssize_t q = 0; q < tail_q; q++)
        if (self->out_key[queue[q]] >= 0 || self->dict_link[queue[q]] >= 0)
            number[queue[q]] = next++;
    self->delta = PyMem_Malloc(sizeof(int32_t) * (Py_ssize_t)nstates * nclasses);
    int32_t *out_key = PyMem_Malloc(sizeof(int32_t) * nstates), *dict_link = PyMem_Malloc(sizeof(int32_t) * nstates);
    if (!self->delta || !out_key || !dict_link) {
        PyMem_Free(out_key);
        PyMem_Free(dict_link);
        PyMem_Free(fail);
        PyMem_Free(queue);
        PyErr_NoMemory();
        goto done;
    }
    for (int32_t u = 0; u < nstates; u++) {
        int32_t v = number[u];
        out_key[v] = self->out_key[u];
        dict_link[v] = self->dict_link[u] < 0 ? -1 : number[self->dict_link[u]];
        for (int32_t c = 0; c < nclasses; c++)
            self->delta[(Py_ssize_t)v * nclasses + c] = number[child[(Py_ssize_t)u * nclasses + c]] * nclasses;
    }
    PyMem_Free(self->out_key);
    PyMem_Free(self->dict_link);
    self->out_key = out_key;
    self->dict_link = dict_link;
    self->first_out = nplain * nclasses;
    PyMem_Free(fail);
    PyMem_Free(queue);
    self->nstates = nstates;
    Py_INCREF(whole);
    Py_XSETREF(self->whole, whole);
    Py_INCREF(tail);
    Py_XSETREF(self->tail, tail);
    Py_INCREF(rest);
    Py_XSETREF(self->rest, rest);
    Py_INCREF(fwhole);
    Py_XSETREF(self->fwhole, fwhole);
    Py_INCREF(ftail);
    Py_XSETREF(self->ftail, ftail);
    rc = 0;
done:
    PyMem_Free(child);
    PyBuffer_Release(&flags);
    PyBuffer_Release(&space);
    return rc;
}

/* The hits of one pass: (key, end) pairs in a growing array. */
typedef struct {
    int32_t *items;
    Py_ssize_t n, cap;
} Hits;

static int
report(Automaton *self, int32_t row, Py_ssize_t i, Py_ssize_t before, Hits *hits)
{
    /* The keys of the state at ``row`` that end at byte i (exclusive end i + 1) and start before ``before``. */
    const int32_t *out_key = self->out_key, *dict_link = self->dict_link;
    int32_t state = row / self->nclasses;
    for (int32_t q = out_key[state] >= 0 ? state : dict_link[state]; q >= 0; q = dict_link[q]) {
        int32_t k = out_key[q];
        if (i + 1 - self->key_len[k] >= before)
            continue;
        if (hits->n + 2 > hits->cap) {
            Py_ssize_t cap = hits->cap ? hits->cap * 2 : 256;
            int32_t *items = PyMem_Realloc(hits->items, sizeof(int32_t) * cap);
            if (items == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            hits->items = items;
            hits->cap = cap;
        }
        hits->items[hits->n++] = k;
        hits->items[hits->n++] = (int32_t)(i + 1);
    }
    return 0;
}

#define CHAINS 4

static int
run(Automaton *self, const unsigned char *s, Py_ssize_t n, Hits *hits)
{
    /* Every key at every position. A pass is a chain of dependent loads (one per byte), so a long haystack is
     * cut into CHAINS segments walked side by side, each from the root: the walk of segment j reports the keys
     * that start in it, and goes on for up to the longest key's length - 1 bytes into the next segment to
     * finish them (a key that starts in segment j + 1 is found by that segment's walk, which started at the
     * root at or before the key's start). */
    const int32_t *delta = self->delta;
    const unsigned char *cls = self->cls;
    int32_t first_out = self->first_out;
    hits->n = 0;
    Py_ssize_t seg = (n + CHAINS - 1) / CHAINS;
    if (n < 256 || seg <= self->max_len) {
        int32_t row = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            row = delta[row + cls[s[i]]];
            if (row >= first_out && report(self, row, i, n, hits) < 0)
                return -1;
        }
        return 0;
    }
    Py_ssize_t begin[CHAINS], stop[CHAINS], before[CHAINS];
    int32_t row[CHAINS];
    for (int j = 0; j < CHAINS; j++) {
        begin[j] = j * seg;
        before[j] = (j + 1) * seg < n ? (j + 1) * seg : n;
        stop[j] = before[j] + self->max_len - 1 < n ? before[j] + self->max_len - 1 : n;
        row[j] = 0;
    }
    /* Side by side for as many steps as every walk has (the last segment is the shortest), then each alone. */
    Py_ssize_t common = stop[CHAINS - 1] - begin[CHAINS - 1];
    for (Py_ssize_t t = 0; t < common; t++) {
        int32_t r0 = delta[row[0] + cls[s[begin[0] + t]]];
        int32_t r1 = delta[row[1] + cls[s[begin[1] + t]]];
        int32_t r2 = delta[row[2] + cls[s[begin[2] + t]]];
        int32_t r3 = delta[row[3] + cls[s[begin[3] + t]]];
        row[0] = r0;
        row[1] = r1;
        row[2] = r2;
        row[3] = r3;
        if ((r0 >= first_out) | (r1 >= first_out) | (r2 >= first_out) | (r3 >= first_out)) {
            for (int j = 0; j < CHAINS; j++)
                if (row[j] >= first_out && report(self, row[j], begin[j] + t, before[j], hits) < 0)
                    return -1;
        }
    }
    for (int j = 0; j < CHAINS; j++) {
        int32_t r = row[j];
        for (Py_ssize_t i = begin[j] + common; i < stop[j]; i++) {
            r = delta[r + cls[s[i]]];
            if (r >= first_out && report(self, r, i, before[j], hits) < 0)
                return -1;
        }
    }
    return 0;
}

/* run() over the code points of a str (wide keys), one walk. */
static int
run_wide(Automaton *self, PyObject *text, Hits *hits)
{
    const int32_t *delta = self->delta;
    int32_t first_out = self->first_out, row = 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    hits->n = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        row = delta[row + class_of(self, PyUnicode_READ(kind, data, i))];
        if (row >= first_out && report(self, row, i, n, hits) < 0)
            return -1;
    }
    return 0;
}

/* One pass over ``haystack`` (bytes, or a str for wide keys), into ``hits``; ``buffer`` is released by the
 * caller when its buf is set. */
static int
run_any(Automaton *self, PyObject *haystack, Py_buffer *buffer, Hits *hits)
{
    if (self->wide) {
        if (!PyUnicode_Check(haystack)) {
            PyErr_SetString(PyExc_TypeError, "Automaton: an automaton of str keys reads a str");
            return -1;
        }
        return run_wide(self, haystack, hits);
    }
    if (PyObject_GetBuffer(haystack, buffer, PyBUF_SIMPLE) < 0)
        return -1;
    return run(self, (const unsigned char *)buffer->buf, buffer->len, hits);
}

static int
append_span(PyObject *found, PyObject *term, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *spans = PyDict_GetItemWithError(found, term);
    if (spans == NULL) {
        if (PyErr_Occurred())
            return -1;
        spans = PyList_New(0);
        if (spans == NULL || PyDict_SetItem(found, term, spans) < 0) {
            Py_XDECREF(spans);
            return -1;
        }
        Py_DECREF(spans);
    }
    PyObject *span = Py_BuildValue("(nn)", start, end);
    if (span == NULL)
        return -1;
    int rc = PyList_Append(spans, span);
    Py_DECREF(span);
    return rc;
}

static inline int
is_decimal_at(int kind, const void *data, Py_ssize_t i)
{
    return Py_UNICODE_ISDECIMAL(PyUnicode_READ(kind, data, i));
}

/* The matches of a term "# key" (data: (term id, 0)) or "# key*" (data: (term id, 1)) that hold the key's hit
 * at at:end, whose number ends at the last non-space character p before the hit (a decimal digit: checked by
 * the caller). The term's regex is \d+(?:[.,]\d+)?, the space class, the key, \w* with "*", then (?!\w). As
 * _TermTable._number_near: a match starts at a digit of the run of digits, "." and "," that ends at p (at most
 * _NEAR characters before the hit), not right after a word character; from such a start s the regex matches
 * exactly when s..p is \d+(?:[.,]\d+)? (the key, whose first character is no digit, "." or "," and no
 * space, can start nowhere but at the hit, whose characters match it), and it ends at the end of the word
 * with "*", at the key's end without (when no word character follows; otherwise there is no match). */
static int
number_key(Automaton *self, int kind, const void *data, Py_ssize_t size, Py_ssize_t at, Py_ssize_t end,
           PyObject *term_star, PyObject *found)
{
    PyObject *term = PyTuple_GET_ITEM(term_star, 0);
    int star = PyObject_IsTrue(PyTuple_GET_ITEM(term_star, 1));
    Py_ssize_t limit = at > self->near ? at - self->near : 0, p = at - 1;
    while (p >= limit) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, p);
        if (!(Py_UNICODE_ISSPACE(ch) || ch == 0xa0 || ch == 0x202f || ch == '-' || ch == 0x2010 || ch == 0x2011
              || ch == 0x2013))
            break;
        p--;
    }
    Py_ssize_t stop = end;
    if (star) {
        while (stop < size && is_word(PyUnicode_READ(kind, data, stop)))
            stop++;
    }
    else if (end < size && is_word(PyUnicode_READ(kind, data, end)))
        return 0;
    Py_ssize_t q = p;
    while (q > limit) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, q - 1);
        if (!(Py_UNICODE_ISDECIMAL(ch) || ch == '.' || ch == ','))
            break;
        q--;
    }
    for (Py_ssize_t s = q; s <= p; s++) {
        if (!is_decimal_at(kind, data, s) || (s > 0 && is_word(PyUnicode_READ(kind, data, s - 1))))
            continue;
        Py_ssize_t i = s;
        while (i <= p && is_decimal_at(kind, data, i))
            i++;
        if (i <= p) {
            Py_UCS4 ch = PyUnicode_READ(kind, data, i);
            if ((ch == '.' || ch == ',') && i + 1 <= p && is_decimal_at(kind, data, i + 1)) {
                i++;
                while (i <= p && is_decimal_at(kind, data, i))
                    i++;
            }
        }
        if (i == p + 1 && append_span(found, term, s, stop) < 0)
            return -1;
    }
    return 0;
}

PyDoc_STRVAR(scan_doc,
"scan(haystack, raw, found) -> pending: see the module docstring (adds to the dict ``found``).");

static PyObject *
Automaton_scan(Automaton *self, PyObject *args)
{
    Py_buffer hay = {NULL}, low = {NULL};
    PyObject *haystack, *raw, *found, *lowered;
    if (!PyArg_ParseTuple(args, "OUO!O", &haystack, &raw, &PyDict_Type, &found, &lowered))
        return NULL;
    PyObject *pending = NULL, *result = NULL;
    Hits hits = {NULL, 0, 0};
    if (lowered != Py_None && PyObject_GetBuffer(lowered, &low, PyBUF_SIMPLE) < 0)
        return NULL;
    if (low.buf != NULL && low.len != PyUnicode_GET_LENGTH(raw)) {
        PyErr_SetString(PyExc_ValueError, "scan: the lowered haystack must have one byte per character of raw");
        goto done;
    }
    Py_ssize_t size = PyUnicode_GET_LENGTH(raw);
    if (run_any(self, haystack, &hay, &hits) < 0)
        goto done;
    if ((self->wide ? PyUnicode_GET_LENGTH(haystack) : hay.len) != size) {
        PyErr_SetString(PyExc_ValueError, "scan: the haystack must have one byte (or character) per character of raw");
        goto done;
    }
    pending = PyList_New(0);
    if (pending == NULL)
        goto done;
    int kind = PyUnicode_KIND(raw), kind_raw = kind;
    const void *data = PyUnicode_DATA(raw), *data_raw = data;
    for (Py_ssize_t h = 0; h < hits.n; h += 2) {
        int32_t k = hits.items[h];
        Py_ssize_t end = hits.items[h + 1], at = end - self->key_len[k];
        int inside = at > 0 && is_word(PyUnicode_READ(kind, data, at - 1));
        unsigned char flags = self->flags[k];
        if (inside && (flags & WORD_START_ONLY))
            continue;
        if (!inside) {
            PyObject *terms = PyTuple_GET_ITEM(self->whole, k);
            Py_ssize_t nterms = PyTuple_GET_SIZE(terms);
            if (nterms && (end >= size || !is_word(PyUnicode_READ(kind, data, end)))) {
                for (Py_ssize_t t = 0; t < nterms; t++)
                    if (append_span(found, PyTuple_GET_ITEM(terms, t), at, end) < 0)
                        goto done;
            }
            terms = PyTuple_GET_ITEM(self->tail, k);
            nterms = PyTuple_GET_SIZE(terms);
            if (nterms) {
                Py_ssize_t stop = end;
                while (stop < size && is_word(PyUnicode_READ(kind, data, stop)))
                    stop++;
                for (Py_ssize_t t = 0; t < nterms; t++)
                    if (append_span(found, PyTuple_GET_ITEM(terms, t), at, stop) < 0)
                        goto done;
            }
        }
        {
            PyObject *terms = PyTuple_GET_ITEM(self->fwhole, k);
            Py_ssize_t nterms = PyTuple_GET_SIZE(terms);
            if (nterms && (end >= size || !is_word(PyUnicode_READ(kind, data, end)))) {
                for (Py_ssize_t t = 0; t < nterms; t++)
                    if (append_span(found, PyTuple_GET_ITEM(terms, t), at, end) < 0)
                        goto done;
            }
            terms = PyTuple_GET_ITEM(self->ftail, k);
            nterms = PyTuple_GET_SIZE(terms);
            if (nterms) {
                Py_ssize_t stop = end;
                while (stop < size && is_word(PyUnicode_READ(kind, data, stop)))
                    stop++;
                for (Py_ssize_t t = 0; t < nterms; t++)
                    if (append_span(found, PyTuple_GET_ITEM(terms, t), at, stop) < 0)
                        goto done;
            }
        }
        if (flags & PENDING) {  /* a key with characters outside Latin-1: every entry in Python */
            PyObject *item = Py_BuildValue("(OinnO)", Py_None, k, at, end, inside ? Py_True : Py_False);
            if (item == NULL || PyList_Append(pending, item) < 0) {
                Py_XDECREF(item);
                goto done;
            }
            Py_DECREF(item);
            continue;
        }
        PyObject *items = PyTuple_GET_ITEM(self->rest, k);
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(items); j++) {
            PyObject *item = PyTuple_GET_ITEM(items, j);
            long kind = PyLong_AsLong(PyTuple_GET_ITEM(item, 1));
            PyObject *data = PyTuple_GET_ITEM(item, 2);
            if (kind == 1 || kind == 4) {  /* an anchored term (a regex): needs a word start */
                if (inside)
                    continue;
            }
            if (kind == 2 || kind == 5 || kind == 6) {  /* a number, spaces and the key: _digits_before */
                Py_ssize_t limit = at > self->near ? at - self->near : 0, p = at - 1;
                while (p >= limit) {
                    Py_UCS4 ch = PyUnicode_READ(kind_raw, data_raw, p);
                    if (!(Py_UNICODE_ISSPACE(ch) || ch == 0xa0 || ch == 0x202f || ch == '-' || ch == 0x2010
                          || ch == 0x2011 || ch == 0x2013))
                        break;
                    p--;
                }
                if (p < limit || !Py_UNICODE_ISDECIMAL(PyUnicode_READ(kind_raw, data_raw, p)))
                    continue;
            }
            if (kind == 6) {  /* "# key" or "# key*": its matches, as _TermTable._number_near finds them */
                if (number_key(self, kind_raw, data_raw, size, at, end, data, found) < 0)
                    goto done;
                continue;
            }
            if ((kind == 1 || kind == 5) && !self->wide) {  /* its next literal run after the key's spaces */
                const unsigned char *h = (const unsigned char *)hay.buf, *r = (const unsigned char *)PyBytes_AS_STRING(data);
                Py_ssize_t len = PyBytes_GET_SIZE(data), q = end, p;
                while (q < hay.len && self->space[h[q]])
                    q++;
                for (p = end; p <= q; p++)
                    if (p + len <= hay.len && memcmp(h + p, r, len) == 0)
                        break;
                if (p > q)
                    continue;
            }
            else if (kind == 3 && low.buf != NULL) {  /* every other literal run in the window: _search_near */
                const unsigned char *h = (const unsigned char *)low.buf;
                Py_ssize_t pos = at > self->near ? at - self->near : 0, stop = end + self->near, missing = 0;
                if (stop > low.len)
                    stop = low.len;
                for (Py_ssize_t r = 0; r < PyTuple_GET_SIZE(data) && !missing; r++) {
                    PyObject *run = PyTuple_GET_ITEM(data, r);
                    Py_ssize_t len = PyBytes_GET_SIZE(run), p;
                    const unsigned char *rs = (const unsigned char *)PyBytes_AS_STRING(run);
                    for (p = pos; p + len <= stop; p++)
                        if (h[p] == rs[0] && memcmp(h + p, rs, len) == 0)
                            break;
                    missing = p + len > stop;
                }
                if (missing)
                    continue;
            }
            PyObject *out = Py_BuildValue("(OinnO)", PyTuple_GET_ITEM(item, 0), k, at, end,
                                          inside ? Py_True : Py_False);
            if (out == NULL || PyList_Append(pending, out) < 0) {
                Py_XDECREF(out);
                goto done;
            }
            Py_DECREF(out);
        }
    }
    {  /* every span list sorted (the Python side sorts again only when it adds spans itself) */
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(found, &pos, &key, &value))
            if (PyList_Check(value) && PyList_GET_SIZE(value) > 1 && PyList_Sort(value) < 0)
                goto done;
    }
    result = pending;
    pending = NULL;
done:
    Py_XDECREF(pending);
    PyMem_Free(hits.items);
    if (hay.obj != NULL)
        PyBuffer_Release(&hay);
    if (low.obj != NULL)
        PyBuffer_Release(&low);
    return result;
}

PyDoc_STRVAR(starts_doc,
"starts(haystack) -> {key number: [start, ...]} of every hit (in the order of their ends).");

static PyObject *
Automaton_starts(Automaton *self, PyObject *args)
{
    Py_buffer hay = {NULL};
    PyObject *haystack;
    if (!PyArg_ParseTuple(args, "O", &haystack))
        return NULL;
    PyObject *result = NULL, *out = NULL;
    Hits hits = {NULL, 0, 0};
    if (run_any(self, haystack, &hay, &hits) < 0)
        goto done;
    out = PyDict_New();
    if (out == NULL)
        goto done;
    for (Py_ssize_t h = 0; h < hits.n; h += 2) {
        int32_t k = hits.items[h];
        PyObject *key = PyLong_FromLong(k), *at = NULL;
        if (key == NULL)
            goto done;
        PyObject *list = PyDict_GetItemWithError(out, key);
        if (list == NULL) {
            if (PyErr_Occurred() || (list = PyList_New(0)) == NULL || PyDict_SetItem(out, key, list) < 0) {
                Py_XDECREF(list);
                Py_DECREF(key);
                goto done;
            }
            Py_DECREF(list);
        }
        Py_DECREF(key);
        at = PyLong_FromSsize_t(hits.items[h + 1] - self->key_len[k]);
        if (at == NULL || PyList_Append(list, at) < 0) {
            Py_XDECREF(at);
            goto done;
        }
        Py_DECREF(at);
    }
    result = out;
    out = NULL;
done:
    Py_XDECREF(out);
    PyMem_Free(hits.items);
    if (hay.obj != NULL)
        PyBuffer_Release(&hay);
    return result;
}

static PyObject *
Automaton_nbytes(Automaton *self, void *closure)
{
    return PyLong_FromSsize_t((Py_ssize_t)self->nstates * (self->nclasses + 2) * 4 + self->nkeys * 5);
}

static PyMethodDef Automaton_methods[] = {
    {"scan", (PyCFunction)Automaton_scan, METH_VARARGS, scan_doc},
    {"starts", (PyCFunction)Automaton_starts, METH_VARARGS, starts_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Automaton_getset[] = {
    {"nbytes", (getter)Automaton_nbytes, NULL, "memory of the tables, in bytes", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject AutomatonType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "transforms._topics_scan.Automaton",
    .tp_basicsize = sizeof(Automaton),
    .tp_dealloc = (destructor)Automaton_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Automaton(keys, flags, whole, tail): see the module docstring.",
    .tp_methods = Automaton_methods,
    .tp_getset = Automaton_getset,
    .tp_init = (initproc)Automaton_init,
    .tp_new = PyType_GenericNew,
};

static PyMethodDef methods[] = {
    {"lower_latin1", lower_latin1, METH_VARARGS, lower_latin1_doc},
    {"latin1", latin1, METH_VARARGS, latin1_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_topics_scan",
    "Topic matching's text analysis and automaton pass in C (transforms/topics.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__topics_scan(void)
{
    /* Latin-1 lower case, one byte to one byte: the bytes of ``chr(b).lower()`` for every byte value is the
     * Python side's _LATIN1_LOWER; tests compare them. Computed from the Unicode database. */
    for (int b = 0; b < 256; b++) {
        Py_UCS4 low = Py_UNICODE_TOLOWER((Py_UCS4)b);
        lower_table[b] = (unsigned char)(low < 256 ? low : (Py_UCS4)b);
    }
    if (PyType_Ready(&AutomatonType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&AutomatonType);
    if (PyModule_AddObject(m, "Automaton", (PyObject *)&AutomatonType) < 0) {
        Py_DECREF(&AutomatonType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
