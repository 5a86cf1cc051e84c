/* fnn_scratch (scratch.h). A thread-specific key frees a thread's buffers when it exits:
 * the Python threads that call the kernels come and go. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "scratch.h"

typedef struct {
    void *raw[FNN_SCRATCH_SLOTS];
    size_t cap[FNN_SCRATCH_SLOTS];
} scratch_set;

static _Thread_local scratch_set *mine;

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int key_ok;

static void release(void *p)
{
    scratch_set *s = p;
    for (int i = 0; i < FNN_SCRATCH_SLOTS; i++)
        free(s->raw[i]);
    free(s);
}

static void key_create(void) { key_ok = pthread_key_create(&key, release) == 0; }

void *fnn_scratch(int slot, size_t bytes)
{
    if (!mine) {
        pthread_once(&key_once, key_create);
        mine = calloc(1, sizeof *mine);
        if (!mine)
            return NULL;
        if (key_ok)
            pthread_setspecific(key, mine);
    }
    if (bytes > mine->cap[slot] || !mine->raw[slot]) {
        free(mine->raw[slot]);
        mine->raw[slot] = malloc(bytes + 63);
        mine->cap[slot] = mine->raw[slot] ? bytes : 0;
        if (!mine->raw[slot])
            return NULL;
    }
    return (void *)(((uintptr_t)mine->raw[slot] + 63) & ~(uintptr_t)63);
}
