/* ring.c: io_uring with nothing but syscall(2) and mmap(2). See ring.h.
 *
 * glibc has no wrappers for the io_uring system calls; syscall(2) makes
 * them by number (__NR_io_uring_setup and the others, from
 * <sys/syscall.h>). The kernel reports errors as for any system call:
 * -1 and errno.
 */
#include "ring.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The indexes are plain 32-bit (and the buffer ring's tail 16-bit)
 * integers in memory the kernel shares with us; we reach them through
 * pointers to atomic types. That is sound where the atomic type has the
 * plain type's size and is always lock-free (a lock would live in our
 * memory, where the kernel knows nothing of it): checked here, when
 * compiling. */
_Static_assert(sizeof(atomic_uint) == sizeof(unsigned), "atomic_uint must be a plain unsigned");
_Static_assert(sizeof(atomic_ushort) == sizeof(__u16), "atomic_ushort must be a plain __u16");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_SHORT_LOCK_FREE == 2,
               "the ring's indexes need lock-free atomics");

/* The three system calls, as liburing's io_uring_setup(),
 * io_uring_enter() and io_uring_register() make them. */
static int io_uring_setup(unsigned entries, struct io_uring_params *p)
{
    return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags)
{
    /* The last two arguments are a signal mask and its size: none. */
    return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
}

static int io_uring_register(int fd, unsigned opcode, void *arg, unsigned nr_args)
{
    return (int)syscall(__NR_io_uring_register, fd, opcode, arg, nr_args);
}

/* Maps one of the ring's regions, found at offset in the ring's descriptor
 * (man 2 io_uring_setup). MAP_POPULATE faults the pages in now rather than
 * on first touch. NULL if mmap() failed. */
static void *map_region(int fd, size_t len, off_t offset)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset);

    return p == MAP_FAILED ? NULL : p;
}

/* Maps the three regions (liburing: io_uring_queue_mmap()): the SQ ring
 * (its indexes and the array of SQE indexes), the CQ ring (its indexes
 * and the CQEs themselves), and the SQEs. With IORING_FEAT_SINGLE_MMAP
 * (Linux 5.4) the two rings share one mapping, the longer of the two. */
static int map_rings(struct ring *r, const struct io_uring_params *p)
{
    r->sq_map_len = p->sq_off.array + p->sq_entries * sizeof(unsigned);
    r->cq_map_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
    if (p->features & IORING_FEAT_SINGLE_MMAP) {
        if (r->cq_map_len > r->sq_map_len)
            r->sq_map_len = r->cq_map_len;
        r->cq_map_len = r->sq_map_len;
    }
    r->sq_map = map_region(r->fd, r->sq_map_len, IORING_OFF_SQ_RING);
    if (r->sq_map == NULL)
        return -1;
    if (p->features & IORING_FEAT_SINGLE_MMAP) {
        r->cq_map = r->sq_map;
    } else {
        r->cq_map = map_region(r->fd, r->cq_map_len, IORING_OFF_CQ_RING);
        if (r->cq_map == NULL)
            return -1;
    }
    r->sqes_map_len = p->sq_entries * sizeof(struct io_uring_sqe);
    r->sqes = map_region(r->fd, r->sqes_map_len, IORING_OFF_SQES);
    return r->sqes == NULL ? -1 : 0;
}

/* Where each index and array is inside the mappings: the kernel says so in
 * sq_off and cq_off, offsets from the start of each ring (liburing does
 * this in io_uring_queue_mmap() too). */
static void find_indexes(struct ring *r, const struct io_uring_params *p)
{
    char *sq = r->sq_map, *cq = r->cq_map;
    unsigned *array = (unsigned *)(sq + p->sq_off.array);

    r->sq_head = (atomic_uint *)(sq + p->sq_off.head);
    r->sq_tail = (atomic_uint *)(sq + p->sq_off.tail);
    r->sq_mask = *(unsigned *)(sq + p->sq_off.ring_mask);
    r->sq_entries = p->sq_entries;
    r->cq_head = (atomic_uint *)(cq + p->cq_off.head);
    r->cq_tail = (atomic_uint *)(cq + p->cq_off.tail);
    r->cq_mask = *(unsigned *)(cq + p->cq_off.ring_mask);
    r->cq_entries = p->cq_entries;
    r->cqes = (struct io_uring_cqe *)(cq + p->cq_off.cqes);
    /* The SQ ring holds indexes into the array of SQEs, not SQEs: entry i
     * of the ring names SQE array[i]. Pointing each at its own SQE once
     * means that filling SQE number (tail & mask) is all a submission
     * takes, as liburing does. */
    for (unsigned i = 0; i < p->sq_entries; i++)
        array[i] = i;
    r->sqe_tail = atomic_load_explicit(r->sq_tail, memory_order_relaxed);
}

/* Why io_uring_setup() failed, in words a user can act on. ENOSYS: the
 * kernel is older than 5.1, or built without io_uring. EPERM: the
 * administrator turned it off (sysctl kernel.io_uring_disabled, Linux 6.6:
 * 2 for everyone, 1 for users outside kernel.io_uring_group), or a seccomp
 * filter refuses the call, as Docker's default profile does. */
static void explain_setup_failure(int err, char *buf, size_t len)
{
    if (err == ENOSYS)
        snprintf(buf, len, "io_uring_setup: %s: this kernel has no io_uring (older than 5.1, "
                 "or built without it)", strerror(err));
    else if (err == EPERM)
        snprintf(buf, len, "io_uring_setup: %s: io_uring is disabled here (sysctl "
                 "kernel.io_uring_disabled) or blocked by a seccomp filter, such as a "
                 "container's", strerror(err));
    else
        snprintf(buf, len, "io_uring_setup: %s", strerror(err));
}

int ring_open(struct ring *r, unsigned sq_entries, unsigned cq_entries, char *err, size_t errlen)
{
    struct io_uring_params p;

    memset(r, 0, sizeof *r);
    memset(&p, 0, sizeof p);
    /* IORING_SETUP_CQSIZE: a completion queue larger than the default of
     * twice the submission queue, since thousands of receives may complete
     * between two looks at it. */
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = cq_entries;
    r->fd = io_uring_setup(sq_entries, &p);
    if (r->fd < 0) {
        explain_setup_failure(errno, err, errlen);
        return -1;
    }
    /* IORING_FEAT_NODROP (Linux 5.5): when the CQ ring is full, the kernel
     * keeps the completions that do not fit in a list of its own and
     * copies them in as room appears (the ring's IORING_SQ_CQ_OVERFLOW
     * flag says there are some), instead of dropping them and counting
     * them in the ring's overflow field. We require it rather than handle
     * lost completions: a lost completion is a connection that would never
     * be served again. */
    if (!(p.features & IORING_FEAT_NODROP)) {
        snprintf(err, errlen, "io_uring: this kernel may drop completions (no IORING_FEAT_NODROP); "
                 "Linux 5.5 or later is needed");
        close(r->fd);
        errno = ENOTSUP;
        return -1;
    }
    if (map_rings(r, &p) < 0) {
        snprintf(err, errlen, "mmap of the io_uring rings: %s", strerror(errno));
        ring_close(r);
        return -1;
    }
    find_indexes(r, &p);
    return 0;
}

void ring_close(struct ring *r)
{
    if (r->sqes != NULL)
        munmap(r->sqes, r->sqes_map_len);
    if (r->cq_map != NULL && r->cq_map != r->sq_map)
        munmap(r->cq_map, r->cq_map_len);
    if (r->sq_map != NULL)
        munmap(r->sq_map, r->sq_map_len);
    /* Closing the ring's descriptor makes the kernel cancel whatever is
     * still in flight, but in the background, after close() has returned:
     * memory those requests use may still be written to for a while. The
     * server waits for every last completion before it gets here. */
    if (r->fd >= 0 && close(r->fd) < 0)
        log_error("close io_uring: %s", strerror(errno));
    r->sqes = NULL;
    r->sq_map = r->cq_map = NULL;
    r->fd = -1;
}

/* SQEs handed out and not yet consumed by the kernel (liburing's
 * io_uring_sq_space_left() is the queue's size less this). */
static unsigned sq_used(struct ring *r)
{
    /* Acquire: the kernel moves its head once it has read those entries;
     * this load, paired with its release store, makes sure it is done
     * with them before we write new SQEs into their slots. */
    return r->sqe_tail - atomic_load_explicit(r->sq_head, memory_order_acquire);
}

/* Publishes the SQEs handed out so far: moves the tail the kernel reads
 * (liburing: __io_uring_flush_sq(), inside io_uring_submit()). */
static void publish_sqes(struct ring *r)
{
    /* Release: every write to the SQEs before this store is visible to the
     * kernel before the new tail is, so it never reads a half-filled SQE. */
    atomic_store_explicit(r->sq_tail, r->sqe_tail, memory_order_release);
}

/* One io_uring_enter(): submits what is published, and with wait, waits
 * for a completion (liburing: the call inside io_uring_submit() and
 * io_uring_submit_and_wait()). The kernel reads the SQ from its head to the tail, so
 * how many there are to submit is the distance between them. */
static int enter(struct ring *r, bool wait)
{
    unsigned to_submit;

    publish_sqes(r);
    to_submit = sq_used(r);
    return io_uring_enter(r->fd, to_submit, wait ? 1 : 0, wait ? IORING_ENTER_GETEVENTS : 0);
}

void ring_submit(struct ring *r)
{
    while (sq_used(r) > 0) {
        int n = enter(r, false);

        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        /* EAGAIN: the kernel could not allocate the requests; man 2
         * io_uring_enter says to wait for some completions and try again.
         * It says the same of EBUSY, which older kernels (5.x) returned
         * here while overflowed completions could not be copied into the
         * ring. The wait leaves the completions in the ring, for the loop
         * to read; the SQEs stay queued and go on the next try. */
        if (n == 0 || errno == EAGAIN || errno == EBUSY) {
            if (enter(r, true) < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY)
                die("io_uring_enter: %s", strerror(errno));
            continue;
        }
        die("io_uring_enter: %s", strerror(errno));  /* EBADF, EFAULT, EINVAL: a bug */
    }
}

int ring_submit_and_wait(struct ring *r)
{
    return enter(r, true) < 0 ? -1 : 0;
}

struct io_uring_sqe *ring_get_sqe(struct ring *r)
{
    struct io_uring_sqe *sqe;

    /* Full: every slot holds an SQE the kernel has not read. Submitting
     * them empties the queue (with no polling thread of the kernel's, it
     * reads them during the io_uring_enter() call); failing here instead
     * would drop whatever the caller wanted to do. */
    if (sq_used(r) >= r->sq_entries) {
        r->sq_full++;
        ring_submit(r);
    }
    sqe = &r->sqes[r->sqe_tail & r->sq_mask];
    r->sqe_tail++;
    memset(sqe, 0, sizeof *sqe);
    return sqe;
}

bool ring_next_cqe(struct ring *r, struct io_uring_cqe *cqe)
{
    unsigned head = atomic_load_explicit(r->cq_head, memory_order_relaxed);
    /* Acquire: the kernel writes a CQE, then moves its tail past it with a
     * release store; this load pairs with that store, so the CQE we read
     * next is the complete one, not what the slot held before. */
    unsigned tail = atomic_load_explicit(r->cq_tail, memory_order_acquire);

    if (head == tail)
        return false;
    *cqe = r->cqes[head & r->cq_mask];
    /* Release: our read of the CQE is done before the kernel sees the
     * slot free and writes the next completion into it. Freeing the slot
     * at once, before the completion is handled, also keeps room in the
     * ring for the completions that handling it may bring. */
    atomic_store_explicit(r->cq_head, head + 1, memory_order_release);
    return true;
}

int buf_ring_open(struct ring *r, struct buf_ring *br, unsigned count, unsigned size,
                  unsigned short group, char *err, size_t errlen)
{
    struct io_uring_buf_reg reg;

    memset(br, 0, sizeof *br);
    br->entries = count;
    br->buffer_size = size;
    br->group = group;
    /* The ring's memory must be page-aligned (man 3 io_uring_register_buf_ring):
     * mmap() returns whole pages, zeroed, so the tail starts at 0. */
    br->ring_len = count * sizeof(struct io_uring_buf);
    br->ring = mmap(NULL, br->ring_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (br->ring == MAP_FAILED) {
        br->ring = NULL;
        snprintf(err, errlen, "mmap of the buffer ring: %s", strerror(errno));
        return -1;
    }
    br->tail = (atomic_ushort *)&br->ring->tail;
    br->buffers = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (br->buffers == MAP_FAILED) {
        br->buffers = NULL;
        snprintf(err, errlen, "mmap of the receive buffers: %s", strerror(errno));
        return -1;
    }
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)br->ring;
    reg.ring_entries = count;
    reg.bgid = group;
    /* EINVAL from a kernel older than 5.19, which has no buffer rings. */
    if (io_uring_register(r->fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0) {
        snprintf(err, errlen, "io_uring_register IORING_REGISTER_PBUF_RING: %s%s", strerror(errno),
                 errno == EINVAL ? " (Linux 5.19 or later is needed)" : "");
        return -1;
    }
    for (unsigned bid = 0; bid < count; bid++)
        buf_ring_return(br, (unsigned short)bid);
    return 0;
}

void buf_ring_close(struct ring *r, struct buf_ring *br)
{
    struct io_uring_buf_reg reg;

    memset(&reg, 0, sizeof reg);
    reg.bgid = br->group;
    if (r->fd >= 0 && io_uring_register(r->fd, IORING_UNREGISTER_PBUF_RING, &reg, 1) < 0)
        log_error("io_uring_register IORING_UNREGISTER_PBUF_RING: %s", strerror(errno));
    if (br->buffers != NULL)
        munmap(br->buffers, (size_t)br->entries * br->buffer_size);
    if (br->ring != NULL)
        munmap(br->ring, br->ring_len);
    memset(br, 0, sizeof *br);
}

char *buf_ring_buffer(const struct buf_ring *br, unsigned short bid)
{
    return br->buffers + (size_t)bid * br->buffer_size;
}

void buf_ring_return(struct buf_ring *br, unsigned short bid)
{
    struct io_uring_buf *buf = &br->ring->bufs[br->local_tail & (br->entries - 1)];

    buf->addr = (uint64_t)(uintptr_t)buf_ring_buffer(br, bid);
    buf->len = br->buffer_size;
    buf->bid = bid;
    br->local_tail++;
    /* Release: the entry's address, length and id are written before the
     * kernel can see the tail move past it and pick the buffer. (The tail
     * shares its 16 bits with the first entry's unused resv field, which
     * is why the entry is filled field by field, never as a whole.) */
    atomic_store_explicit(br->tail, br->local_tail, memory_order_release);
}
