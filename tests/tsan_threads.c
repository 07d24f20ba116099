/* SPDX-License-Identifier: Apache-2.0 */
/* tsan_threads.c -- linked into every executable of the ThreadSanitizer build (KINFER_TSAN)
 * only: C11 <threads.h> over the pthread calls that TSan intercepts.
 *
 * librdkafka (Debian's 2.0) starts its threads with C11 thrd_create and guards its queues
 * with mtx_ and cnd_. glibc implements those by calling its pthread internals directly, past
 * TSan's interceptors (GCC 12's libtsan and clang 14's have no thrd_* interceptors), so
 * TSan never registers librdkafka's threads: the first malloc on one of them crashes inside
 * the TSan runtime (SEGV in SizeClassAllocator64LocalCache::Allocate on "rdk:mock" or
 * "rdk:main"), and even if it did not, TSan would not see the locks that hand a message from
 * a broker thread to the thread that polls it, and would report kinfer's reads of every
 * consumed message as races. The executable's definitions here take precedence over
 * glibc's for librdkafka's references (ELF interposition), so its threads and locks become
 * ordinary pthread ones that TSan sees.
 *
 * This is not kinfer code and changes nothing in the other builds: CMakeLists.txt compiles it
 * only with KINFER_TSAN. glibc's C11 types are its pthread types: thrd_t is pthread_t,
 * mtx_t and cnd_t have the size and alignment of pthread_mutex_t and pthread_cond_t (glibc
 * static_asserts that), once_flag wraps a pthread_once_t. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

_Static_assert(sizeof(mtx_t) >= sizeof(pthread_mutex_t), "mtx_t holds a pthread mutex");
_Static_assert(sizeof(cnd_t) >= sizeof(pthread_cond_t), "cnd_t holds a pthread condition");
_Static_assert(sizeof(thrd_t) == sizeof(pthread_t), "thrd_t is a pthread_t");

struct start {
        thrd_start_t fn;
        void *arg;
};

static void *trampoline(void *p)
{
        struct start s = *(struct start *)p;
        free(p);
        return (void *)(intptr_t)s.fn(s.arg);
}

static int code(int e)
{
        return e == 0 ? thrd_success : e == ENOMEM || e == EAGAIN ? thrd_nomem : e == ETIMEDOUT ? thrd_timedout
               : e == EBUSY ? thrd_busy : thrd_error;
}

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
        struct start *s = malloc(sizeof(*s));
        if (!s)
                return thrd_nomem;
        s->fn = fn;
        s->arg = arg;
        int e = pthread_create((pthread_t *)thr, NULL, trampoline, s);
        if (e)
                free(s);
        return code(e);
}

int thrd_join(thrd_t thr, int *res)
{
        void *v = NULL;
        int e = pthread_join((pthread_t)thr, &v);
        if (!e && res)
                *res = (int)(intptr_t)v;
        return code(e);
}

int thrd_detach(thrd_t thr)
{
        return code(pthread_detach((pthread_t)thr));
}

int mtx_init(mtx_t *m, int type)
{
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        if (type & mtx_recursive)
                pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
        int e = pthread_mutex_init((pthread_mutex_t *)m, &a);
        pthread_mutexattr_destroy(&a);
        return code(e);
}

int mtx_lock(mtx_t *m)
{
        return code(pthread_mutex_lock((pthread_mutex_t *)m));
}

int mtx_trylock(mtx_t *m)
{
        return code(pthread_mutex_trylock((pthread_mutex_t *)m));
}

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts)
{
        return code(pthread_mutex_timedlock((pthread_mutex_t *)m, ts));
}

int mtx_unlock(mtx_t *m)
{
        return code(pthread_mutex_unlock((pthread_mutex_t *)m));
}

void mtx_destroy(mtx_t *m)
{
        pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c)
{
        return code(pthread_cond_init((pthread_cond_t *)c, NULL));
}

int cnd_signal(cnd_t *c)
{
        return code(pthread_cond_signal((pthread_cond_t *)c));
}

int cnd_broadcast(cnd_t *c)
{
        return code(pthread_cond_broadcast((pthread_cond_t *)c));
}

int cnd_wait(cnd_t *c, mtx_t *m)
{
        return code(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts)
{
        return code(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}

void cnd_destroy(cnd_t *c)
{
        pthread_cond_destroy((pthread_cond_t *)c);
}

void call_once(once_flag *flag, void (*fn)(void))
{
        _Static_assert(sizeof(once_flag) == sizeof(pthread_once_t), "once_flag is a pthread_once_t");
        pthread_once((pthread_once_t *)flag, fn);
}
