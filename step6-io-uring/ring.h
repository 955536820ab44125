/* ring.h: an io_uring instance, set up and driven with the kernel's own
 * interface: io_uring_setup(2), io_uring_enter(2) and io_uring_register(2)
 * through syscall(2), the rings mapped with mmap(2). liburing wraps the
 * same calls; each function here names the liburing function it stands
 * for, to read alongside its manual pages (man 7 io_uring).
 */
#ifndef RING_H
#define RING_H

#include <linux/io_uring.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The rings are memory shared with the kernel. Each side writes one index
 * and only reads the other's: we write the submission queue's tail and the
 * completion queue's head, the kernel the other two. */
struct ring {
    int fd;
    /* Submission queue (SQ): we fill entries (SQEs) and move the tail. */
    atomic_uint *sq_head;        /* the kernel's: how far it has read */
    atomic_uint *sq_tail;        /* ours: how far we have published */
    unsigned sq_mask;            /* entries - 1: entries is a power of two */
    unsigned sq_entries;
    unsigned sqe_tail;           /* SQEs handed out, published or not */
    struct io_uring_sqe *sqes;
    /* Completion queue (CQ): the kernel fills entries (CQEs) and moves the
     * tail; we read them and move the head. */
    atomic_uint *cq_head;        /* ours */
    atomic_uint *cq_tail;        /* the kernel's */
    unsigned cq_mask;
    unsigned cq_entries;
    struct io_uring_cqe *cqes;
    /* The mappings, to unmap. */
    void *sq_map, *cq_map;
    size_t sq_map_len, cq_map_len, sqes_map_len;
    unsigned long long sq_full;  /* times ring_get_sqe() found no room */
};

/* Sets up a ring with room for sq_entries submissions and cq_entries
 * completions (io_uring_queue_init_params()). Returns 0, or -1 with errno
 * set and a one-line reason in err. */
int ring_open(struct ring *r, unsigned sq_entries, unsigned cq_entries, char *err, size_t errlen);

/* Unmaps the rings and closes the ring's descriptor (io_uring_queue_exit()). */
void ring_close(struct ring *r);

/* A zeroed submission entry to fill in, never NULL: when the queue is full,
 * what is queued is submitted first (io_uring_get_sqe(), which returns
 * NULL instead). The entry goes to the kernel at the next ring_submit() or
 * ring_submit_and_wait(). */
struct io_uring_sqe *ring_get_sqe(struct ring *r);

/* Hands every queued entry to the kernel without waiting for anything
 * (io_uring_submit()). */
void ring_submit(struct ring *r);

/* The same, then waits until at least one completion is there to read
 * (io_uring_submit_and_wait(ring, 1)). Returns 0, or -1 with errno EINTR
 * when a signal cut the wait short (SIGSTOP and SIGCONT do). */
int ring_submit_and_wait(struct ring *r);

/* Copies the oldest completion into *cqe and frees its slot in the ring
 * for the kernel (io_uring_peek_cqe() and io_uring_cqe_seen() in one).
 * False if there is none. */
bool ring_next_cqe(struct ring *r, struct io_uring_cqe *cqe);

/* A ring of provided buffers (IORING_REGISTER_PBUF_RING, Linux 5.19): the
 * kernel picks a free buffer from it for a receive only once data has
 * arrived, and names it in the completion (IORING_CQE_F_BUFFER, its id in
 * the upper 16 bits of flags). Until then, a receive holds no buffer. */
struct buf_ring {
    struct io_uring_buf_ring *ring;  /* the entries, shared with the kernel */
    atomic_ushort *tail;             /* ours: how far we have published */
    unsigned short local_tail;
    unsigned entries;                /* buffers, a power of two */
    unsigned buffer_size;
    unsigned short group;            /* the id receives name in buf_group */
    char *buffers;                   /* entries * buffer_size bytes */
    size_t ring_len;
};

/* Registers a ring of count buffers of size bytes each as buffer group
 * group, and gives every buffer to the kernel (io_uring_setup_buf_ring()).
 * Returns 0, or -1 with errno set and a one-line reason in err. */
int buf_ring_open(struct ring *r, struct buf_ring *br, unsigned count, unsigned size,
                  unsigned short group, char *err, size_t errlen);

/* Unregisters the buffer ring and frees it (io_uring_free_buf_ring()). */
void buf_ring_close(struct ring *r, struct buf_ring *br);

/* Buffer bid's memory. */
char *buf_ring_buffer(const struct buf_ring *br, unsigned short bid);

/* Gives buffer bid back to the kernel, to be picked again by a later
 * receive (io_uring_buf_ring_add() and io_uring_buf_ring_advance()). */
void buf_ring_return(struct buf_ring *br, unsigned short bid);

#endif
