/*
 * The C relay: the practical limit charla is measured against in `deno task bench`.
 *
 * A minimal single-threaded epoll relay that speaks exactly the part of charla's
 * line protocol the bench's generator needs, as bench/peers/node_relay.mjs does:
 *
 * - `* welcome, you are user<N>` first, then `* online: ...` (at most 20 names) or
 *   `* nobody else is here`; `* user<N> joined` / `* user<N> left` to everyone while
 *   at most 100 people are connected (charla's presence limit); in console mode
 *   `* you are talking with the operator of this server` instead;
 * - `<userN> text` relayed to every other member of the sender's room (`--relay`);
 * - `/join #name` moves the client to room #name (everyone starts in the lobby)
 *   and is answered `* you are now in #name (<n> people)`; any other command gets
 *   `* error: commands are not supported by this relay`; `//text` is the text `/text`;
 * - `<server> text` to every client for each line on stdin (the operator);
 * - every client line logged to stdout as `HH:MM:SS [#id name] text` (in both
 *   modes, as charla does), and joins and leaves as `HH:MM:SS * #id userN ...`;
 * - lines bounded at 65,536 bytes (longer ones dropped with an error notice), a
 *   `\r` before `\n` removed, a last line without `\n` before EOF still delivered;
 * - `--port 0` prints `listening on 127.0.0.1:<port>` as the first stdout line;
 *   `--max-clients` refuses one more with `* server full`.
 *
 * How it moves bytes: each epoll round reads every ready socket once (up to 64
 * KiB), frames the complete lines of that read into ONE buffer with the sender's
 * prefix, and appends a reference to that buffer to the queue of every recipient
 * (refcounted, never copied per peer). After the round, each peer with something
 * queued is written once with writev() over its queue. Sockets are non-blocking;
 * a short write or EAGAIN leaves the rest queued and waits for EPOLLOUT.
 *
 * What it leaves out on purpose, being a measuring stick and not a server: NO
 * slow-client protection (a client that stops reading makes its queue grow
 * without bound), no sanitizing of control characters or invalid UTF-8, no
 * names, private messages or other commands, rooms are never freed (at most
 * 4,096), IPv4 only. Not for use outside the bench.
 *
 * Build: cc -O2 -o c_relay c_relay.c  (the bench does this into bench/results/)
 * Usage: c_relay [--host 127.0.0.1] [--port 0] [--relay] [--max-clients 1024]
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Longest line accepted, without its line ending (charla's default too). */
#define MAX_LINE 65536
/* Bytes read from one socket per epoll round. */
#define READ_SIZE 65536
/* Joins and leaves are announced only while at most this many are connected. */
#define PRESENCE_LIMIT 100
/* Most names in the "online" notice a newcomer gets. */
#define LISTED_NAMES 20
#define MAX_EVENTS 1024
/* iovecs per writev(): Linux's IOV_MAX. */
#define MAX_IOV 1024
#define MAX_ROOMS 4096
#define ROOM_NAME_MAX 32

/* A buffer shared by every queue it is in; freed when the last one is done with it. */
struct buf {
    size_t refs;
    size_t len;
    char data[];
};

struct room;

struct peer {
    int fd;
    int id;
    char name[16];     /* "user<N>" */
    char prefix[24];   /* "<user<N>> ", copied in front of every relayed line */
    size_t prefix_len;
    char tag[48];      /* "[#<N> user<N>] ", copied into every log line */
    size_t tag_len;
    /* An incomplete line from earlier reads (malloc'd), or NULL. */
    char *partial;
    size_t partial_len;
    /* True while dropping the rest of an over-long line up to its "\n". */
    bool discarding;
    /* The send queue: a ring of buffer references; the head is written from head_off. */
    struct buf **q;
    size_t q_cap, q_head, q_count, head_off;
    /* In the dirty list: has something to write this round. */
    bool dirty;
    /* False after a short write or EAGAIN, until EPOLLOUT says the socket has room. */
    bool writable;
    /* Whether EPOLLOUT is in the epoll interest set. */
    bool want_out;
    /* EOF seen: no more reading; closed once the queue is written. */
    bool closing;
    /* Closed; freed at the end of the round (events of this round may still point here). */
    bool dead;
    /* Registered: counted, in a room and in the join-order list. */
    bool joined;
    struct room *room;
    struct peer *room_prev, *room_next;
    struct peer *prev, *next; /* every joined peer, in join order */
};

struct room {
    char name[ROOM_NAME_MAX + 2]; /* "#name"; "" for the lobby */
    size_t count;
    struct peer *head, *tail;
};

static bool relay_mode = false;
static int max_clients = 1024;
static int epfd = -1;
static int listen_fd = -1;
static int next_id = 1;
static size_t npeers = 0;
static struct peer *first_peer = NULL, *last_peer = NULL;
static struct room *rooms[MAX_ROOMS];
static size_t nrooms = 0;

/* Peers with something to write this round. */
static struct peer **dirty = NULL;
static size_t ndirty = 0, dirty_cap = 0;
/* Peers closed this round, freed at its end. */
static struct peer **graveyard = NULL;
static size_t ndead = 0, dead_cap = 0;

/* The operator's log (stdout), gathered during a round and written at its end. */
static char *out = NULL;
static size_t out_len = 0, out_cap = 0;

/* The read buffer: an incomplete line (up to MAX_LINE + 1) and then one read. */
static char rbuf[MAX_LINE + 2 + READ_SIZE];

/* Line bounds of the read being handled: start0, end0, start1, ... */
static size_t *bounds = NULL;
static size_t bounds_cap = 0;

/* Stdin: the operator's incomplete line. */
static char stdin_line[MAX_LINE + 2];
static size_t stdin_len = 0;
static bool stdin_discarding = false;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (q == NULL && n > 0) die("realloc");
    return q;
}

static void push_ptr(struct peer ***list, size_t *n, size_t *cap, struct peer *p) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *list = xrealloc(*list, *cap * sizeof **list);
    }
    (*list)[(*n)++] = p;
}

/* ------------------------------------------------------------------------- */
/* The log. */

static void out_reserve(size_t more) {
    if (out_len + more <= out_cap) return;
    size_t cap = out_cap ? out_cap : 65536;
    while (cap < out_len + more) cap *= 2;
    out = xrealloc(out, cap);
    out_cap = cap;
}

static void out_append(const char *s, size_t n) {
    out_reserve(n);
    memcpy(out + out_len, s, n);
    out_len += n;
}

/* "HH:MM:SS " of the local time, formatted at most once a second. */
static const char *stamp(void) {
    static time_t second = -1;
    static char text[16];
    time_t now = time(NULL);
    if (now != second) {
        struct tm tm;
        localtime_r(&now, &tm);
        snprintf(text, sizeof text, "%02d:%02d:%02d ", tm.tm_hour, tm.tm_min, tm.tm_sec);
        second = now;
    }
    return text;
}

#define STAMP_LEN 9

/* Logs a line of the server's own. */
static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    out_append(stamp(), STAMP_LEN);
    out_append(line, (size_t)n);
    out_append("\n", 1);
}

/* Writes the gathered log; stdout is a file or a pipe, so this may block, as charla's does. */
static void flush_log(void) {
    size_t done = 0;
    while (done < out_len) {
        ssize_t n = write(1, out + done, out_len - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            break; /* nobody reads the log any more: drop it, keep relaying */
        }
        done += (size_t)n;
    }
    out_len = 0;
}

/* ------------------------------------------------------------------------- */
/* Buffers and queues. */

static struct buf *buf_new(size_t len) {
    struct buf *b = malloc(sizeof *b + len);
    if (b == NULL) die("malloc");
    b->refs = 0;
    b->len = len;
    return b;
}

static void buf_unref(struct buf *b) {
    if (--b->refs == 0) free(b);
}

static void mark_dirty(struct peer *p) {
    if (p->dirty) return;
    p->dirty = true;
    push_ptr(&dirty, &ndirty, &dirty_cap, p);
}

/* Queues a reference to `b` for `p`; it is written at the end of the round. */
static void enqueue(struct peer *p, struct buf *b) {
    if (p->dead || b->len == 0) return;
    if (p->q_count == p->q_cap) {
        size_t cap = p->q_cap ? p->q_cap * 2 : 8;
        struct buf **q = malloc(cap * sizeof *q);
        if (q == NULL) die("malloc");
        for (size_t i = 0; i < p->q_count; i++) q[i] = p->q[(p->q_head + i) % p->q_cap];
        free(p->q);
        p->q = q;
        p->q_cap = cap;
        p->q_head = 0;
    }
    p->q[(p->q_head + p->q_count) % p->q_cap] = b;
    p->q_count++;
    b->refs++;
    mark_dirty(p);
}

/* A buffer holding `s`, queued for nobody yet: free it if nobody takes it (refs 0). */
static struct buf *buf_text(const char *s, size_t n) {
    struct buf *b = buf_new(n);
    memcpy(b->data, s, n);
    return b;
}

/* Frees a buffer that ended up queued nowhere. */
static void buf_drop_if_unused(struct buf *b) {
    if (b->refs == 0) free(b);
}

/* Sends a notice ("* text") to one peer. */
static void notice(struct peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void notice(struct peer *p, const char *fmt, ...) {
    char line[1024];
    line[0] = '*';
    line[1] = ' ';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + 2, sizeof line - 3, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t len = 2 + ((size_t)n > sizeof line - 4 ? sizeof line - 4 : (size_t)n);
    line[len++] = '\n';
    struct buf *b = buf_text(line, len);
    enqueue(p, b);
    buf_drop_if_unused(b);
}

/* Sends `b` to every joined peer but `except`. */
static void broadcast(struct buf *b, struct peer *except) {
    for (struct peer *o = first_peer; o != NULL; o = o->next) {
        if (o != except) enqueue(o, b);
    }
    buf_drop_if_unused(b);
}

/* ------------------------------------------------------------------------- */
/* Peers and rooms. */

static void set_events(struct peer *p) {
    uint32_t events = (p->closing ? 0 : EPOLLIN) | (p->want_out ? EPOLLOUT : 0);
    struct epoll_event ev = {.events = events, .data.ptr = p};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, p->fd, &ev) < 0) die("epoll_ctl MOD");
}

static void room_remove(struct peer *p) {
    struct room *r = p->room;
    if (r == NULL) return;
    if (p->room_prev) p->room_prev->room_next = p->room_next;
    else r->head = p->room_next;
    if (p->room_next) p->room_next->room_prev = p->room_prev;
    else r->tail = p->room_prev;
    p->room_prev = p->room_next = NULL;
    p->room = NULL;
    r->count--;
}

static void room_add(struct peer *p, struct room *r) {
    p->room = r;
    p->room_prev = r->tail;
    p->room_next = NULL;
    if (r->tail) r->tail->room_next = p;
    else r->head = p;
    r->tail = p;
    r->count++;
}

/* The room called `name` (with its "#"), created if new; NULL when there are too many. */
static struct room *room_named(const char *name) {
    for (size_t i = 0; i < nrooms; i++) {
        if (strcmp(rooms[i]->name, name) == 0) return rooms[i];
    }
    if (nrooms == MAX_ROOMS) return NULL;
    struct room *r = calloc(1, sizeof *r);
    if (r == NULL) die("calloc");
    snprintf(r->name, sizeof r->name, "%s", name);
    rooms[nrooms++] = r;
    return r;
}

/* Unregisters a peer that leaves: its room, the join order, the log, the others. */
static void leave(struct peer *p) {
    if (!p->joined) return;
    p->joined = false;
    room_remove(p);
    if (p->prev) p->prev->next = p->next;
    else first_peer = p->next;
    if (p->next) p->next->prev = p->prev;
    else last_peer = p->prev;
    p->prev = p->next = NULL;
    npeers--;
    logf_("* #%d %s left", p->id, p->name);
    if (relay_mode && npeers <= PRESENCE_LIMIT) {
        char line[64];
        int n = snprintf(line, sizeof line, "* %s left\n", p->name);
        broadcast(buf_text(line, (size_t)n), NULL);
    }
}

/* Closes a peer now, dropping what was queued for it. */
static void kill_peer(struct peer *p) {
    if (p->dead) return;
    leave(p);
    p->dead = true;
    close(p->fd); /* also removes it from the epoll set */
    for (size_t i = 0; i < p->q_count; i++) buf_unref(p->q[(p->q_head + i) % p->q_cap]);
    p->q_count = 0;
    free(p->q);
    p->q = NULL;
    free(p->partial);
    p->partial = NULL;
    push_ptr(&graveyard, &ndead, &dead_cap, p);
}

static void join(int fd, const struct sockaddr_in *addr) {
    struct peer *p = calloc(1, sizeof *p);
    if (p == NULL) die("calloc");
    p->fd = fd;
    p->id = next_id++;
    p->writable = true;
    snprintf(p->name, sizeof p->name, "user%d", p->id);
    p->prefix_len = (size_t)snprintf(p->prefix, sizeof p->prefix, "<%s> ", p->name);
    p->tag_len = (size_t)snprintf(p->tag, sizeof p->tag, "[#%d %s] ", p->id, p->name);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl ADD");

    p->joined = true;
    npeers++;
    p->prev = last_peer;
    if (last_peer) last_peer->next = p;
    else first_peer = p;
    last_peer = p;
    room_add(p, rooms[0]);

    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &addr->sin_addr, ip, sizeof ip);
    logf_("* #%d %s joined from %s:%d", p->id, p->name, ip, ntohs(addr->sin_port));
    notice(p, "welcome, you are %s", p->name);
    if (!relay_mode) {
        notice(p, "you are talking with the operator of this server");
        return;
    }
    if (npeers == 1) {
        notice(p, "nobody else is here");
    } else {
        char list[LISTED_NAMES * 18 + 64];
        size_t n = (size_t)snprintf(list, sizeof list, "online: ");
        int listed = 0;
        for (struct peer *o = first_peer; o != NULL && listed < LISTED_NAMES; o = o->next) {
            if (o == p) continue;
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", listed ? ", " : "", o->name);
            listed++;
        }
        size_t more = npeers - 1 - (size_t)listed;
        if (more > 0) snprintf(list + n, sizeof list - n, " and %zu more", more);
        notice(p, "%s", list);
    }
    if (npeers <= PRESENCE_LIMIT) {
        char line[64];
        int n = snprintf(line, sizeof line, "* %s joined\n", p->name);
        broadcast(buf_text(line, (size_t)n), p);
    }
}

static void accept_all(void) {
    for (;;) {
        struct sockaddr_in addr;
        socklen_t len = sizeof addr;
        int fd = accept4(listen_fd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) perror("accept");
            return; /* EMFILE and the like: the listener stays ready, tried next round */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (npeers >= (size_t)max_clients) {
            static const char full[] = "* server full\n";
            (void)!write(fd, full, sizeof full - 1);
            close(fd);
            continue;
        }
        join(fd, &addr);
    }
}

/* ------------------------------------------------------------------------- */
/* The hot path: one read becomes one relay buffer and log lines. */

/* Relays the `count` lines of `data` (in `bounds`) to the rest of the room, and logs them. */
static void deliver(struct peer *p, const char *data, size_t count) {
    if (count == 0) return;
    const char *time_text = stamp();
    size_t text = 0;
    for (size_t i = 0; i < count; i++) text += bounds[2 * i + 1] - bounds[2 * i];

    out_reserve(text + count * (STAMP_LEN + p->tag_len + 1));
    for (size_t i = 0; i < count; i++) {
        size_t start = bounds[2 * i], end = bounds[2 * i + 1];
        memcpy(out + out_len, time_text, STAMP_LEN);
        out_len += STAMP_LEN;
        memcpy(out + out_len, p->tag, p->tag_len);
        out_len += p->tag_len;
        memcpy(out + out_len, data + start, end - start);
        out_len += end - start;
        out[out_len++] = '\n';
    }
    if (!relay_mode || p->room->count < 2) return;

    struct buf *b = buf_new(text + count * (p->prefix_len + 1));
    char *o = b->data;
    for (size_t i = 0; i < count; i++) {
        size_t start = bounds[2 * i], end = bounds[2 * i + 1];
        memcpy(o, p->prefix, p->prefix_len);
        o += p->prefix_len;
        memcpy(o, data + start, end - start);
        o += end - start;
        *o++ = '\n';
    }
    for (struct peer *o2 = p->room->head; o2 != NULL; o2 = o2->room_next) {
        if (o2 != p) enqueue(o2, b);
    }
    buf_drop_if_unused(b);
}

static bool room_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

/* A line starting with "/" (not "//"). */
static void command(struct peer *p, const char *line, size_t len) {
    static const char join_cmd[] = "/join ";
    size_t jl = sizeof join_cmd - 1;
    if (len > jl && memcmp(line, join_cmd, jl) == 0) {
        const char *name = line + jl;
        size_t n = len - jl;
        bool ok = n >= 2 && n <= ROOM_NAME_MAX + 1 && name[0] == '#';
        for (size_t i = 1; ok && i < n; i++) ok = room_char(name[i]);
        if (!ok) {
            notice(p, "error: usage: /join #room (1-32 letters, digits, _ or -)");
            return;
        }
        char text[ROOM_NAME_MAX + 2];
        memcpy(text, name, n);
        text[n] = '\0';
        struct room *r = room_named(text);
        if (r == NULL) {
            notice(p, "error: too many rooms");
            return;
        }
        if (p->room != r) {
            room_remove(p);
            room_add(p, r);
        }
        notice(p, "you are now in %s (%zu people)", r->name, r->count);
        return;
    }
    notice(p, "error: commands are not supported by this relay");
}

static void add_bound(size_t *count, size_t start, size_t end) {
    if (2 * *count + 2 > bounds_cap) {
        bounds_cap = bounds_cap ? bounds_cap * 2 : 4096;
        bounds = xrealloc(bounds, bounds_cap * sizeof *bounds);
    }
    bounds[2 * *count] = start;
    bounds[2 * *count + 1] = end;
    (*count)++;
}

/* Handles the complete lines of data[0..len); returns where the incomplete tail starts. */
static size_t frame(struct peer *p, const char *data, size_t len) {
    size_t pos = 0, count = 0;
    const char *nl;
    while (pos < len && (nl = memchr(data + pos, '\n', len - pos)) != NULL) {
        size_t end = (size_t)(nl - data);
        size_t next = end + 1;
        if (end > pos && data[end - 1] == '\r') end--;
        if (end - pos > MAX_LINE) {
            notice(p, "error: line longer than %d bytes was dropped", MAX_LINE);
        } else if (end > pos && data[pos] == '/' && (end - pos < 2 || data[pos + 1] != '/')) {
            /* What came before the command goes first: /join changes where lines go. */
            deliver(p, data, count);
            count = 0;
            command(p, data + pos, end - pos);
        } else {
            if (end > pos && data[pos] == '/') pos++; /* "//text" is the text "/text" */
            add_bound(&count, pos, end);
        }
        pos = next;
    }
    deliver(p, data, count);
    return pos;
}

/* The client ended its side: deliver a last line without "\n", leave, close once written. */
static void on_eof(struct peer *p) {
    if (p->partial_len > 0 && !p->discarding) {
        memcpy(rbuf, p->partial, p->partial_len);
        rbuf[p->partial_len] = '\n';
        frame(p, rbuf, p->partial_len + 1);
    }
    free(p->partial);
    p->partial = NULL;
    p->partial_len = 0;
    leave(p);
    if (p->q_count == 0) {
        kill_peer(p);
        return;
    }
    p->closing = true;
    set_events(p);
}

static void on_readable(struct peer *p) {
    size_t have = 0;
    if (p->partial_len > 0) {
        memcpy(rbuf, p->partial, p->partial_len);
        have = p->partial_len;
    }
    ssize_t n = read(p->fd, rbuf + have, READ_SIZE);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        kill_peer(p); /* ECONNRESET and the like: this peer only */
        return;
    }
    if (n == 0) {
        on_eof(p);
        return;
    }
    size_t len = have + (size_t)n;
    size_t start = 0;
    if (p->discarding) {
        const char *nl = memchr(rbuf, '\n', len);
        if (nl == NULL) return;
        p->discarding = false;
        start = (size_t)(nl - rbuf) + 1;
    }
    size_t tail = start + frame(p, rbuf + start, len - start);
    size_t rest = len - tail;
    if (rest > MAX_LINE + 1) {
        /* Longer than any acceptable line and no end in sight: drop it up to its "\n". */
        notice(p, "error: line longer than %d bytes was dropped", MAX_LINE);
        p->discarding = true;
        rest = 0;
    }
    if (rest == 0) {
        free(p->partial);
        p->partial = NULL;
    } else {
        p->partial = xrealloc(p->partial, rest);
        memcpy(p->partial, rbuf + tail, rest);
    }
    p->partial_len = rest;
}

/* Writes as much of the peer's queue as the socket takes, in writev() calls of MAX_IOV. */
static void flush_peer(struct peer *p) {
    p->dirty = false;
    if (p->dead || !p->writable) return;
    while (p->q_count > 0) {
        struct iovec iov[MAX_IOV];
        size_t n_iov = p->q_count < MAX_IOV ? p->q_count : MAX_IOV;
        size_t total = 0;
        for (size_t i = 0; i < n_iov; i++) {
            struct buf *b = p->q[(p->q_head + i) % p->q_cap];
            size_t off = i == 0 ? p->head_off : 0;
            iov[i].iov_base = b->data + off;
            iov[i].iov_len = b->len - off;
            total += b->len - off;
        }
        ssize_t n = writev(p->fd, iov, (int)n_iov);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                p->writable = false;
                break;
            }
            kill_peer(p); /* EPIPE, ECONNRESET: this peer only */
            return;
        }
        size_t left = (size_t)n;
        while (left > 0) {
            struct buf *b = p->q[p->q_head];
            size_t rest = b->len - p->head_off;
            if (left < rest) {
                p->head_off += left;
                break;
            }
            left -= rest;
            p->head_off = 0;
            p->q_head = (p->q_head + 1) % p->q_cap;
            p->q_count--;
            buf_unref(b);
        }
        if ((size_t)n < total) {
            p->writable = false; /* the socket buffer is full */
            break;
        }
    }
    bool want_out = p->q_count > 0;
    if (p->q_count == 0 && p->closing) {
        kill_peer(p);
        return;
    }
    if (want_out != p->want_out) {
        p->want_out = want_out;
        set_events(p);
    }
}

/* ------------------------------------------------------------------------- */
/* The operator: each stdin line goes to every client as "<server> text". */

static void operator_line(const char *line, size_t len) {
    if (len > 0 && line[len - 1] == '\r') len--;
    if (len == 0) return;
    static const char who[] = "<server> ";
    struct buf *b = buf_new(sizeof who - 1 + len + 1);
    memcpy(b->data, who, sizeof who - 1);
    memcpy(b->data + sizeof who - 1, line, len);
    b->data[b->len - 1] = '\n';
    broadcast(b, NULL);
    out_append(stamp(), STAMP_LEN);
    out_append("[server] ", 9);
    out_append(line, len);
    out_append("\n", 1);
}

/* Returns false at EOF. */
static bool on_stdin(void) {
    char chunk[65536];
    ssize_t n = read(0, chunk, sizeof chunk);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    if (n == 0) return false;
    for (ssize_t i = 0; i < n; i++) {
        char c = chunk[i];
        if (c == '\n') {
            if (!stdin_discarding) operator_line(stdin_line, stdin_len);
            stdin_len = 0;
            stdin_discarding = false;
        } else if (stdin_len <= MAX_LINE) {
            stdin_line[stdin_len++] = c;
        } else {
            stdin_discarding = true;
        }
    }
    return true;
}

/* ------------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr,
            "Usage: c_relay [--host 127.0.0.1] [--port 0] [--relay] [--max-clients 1024]\n");
    exit(2);
}

static long number_arg(const char *text, long min, long max) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || *text == '\0' || *end != '\0' || v < min || v > max) usage();
    return v;
}

/* Marks for the two non-peer sources in epoll_event.data.ptr. */
static char LISTENER_MARK, STDIN_MARK;

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--relay") == 0 || strcmp(a, "-r") == 0) relay_mode = true;
        else if (strcmp(a, "--host") == 0 && i + 1 < argc) host = argv[++i];
        else if (strcmp(a, "--port") == 0 && i + 1 < argc) port = (int)number_arg(argv[++i], 0, 65535);
        else if (strcmp(a, "--max-clients") == 0 && i + 1 < argc)
            max_clients = (int)number_arg(argv[++i], 1, INT_MAX);
        else usage();
    }
    signal(SIGPIPE, SIG_IGN); /* a peer that left makes writev fail with EPIPE instead */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* as Deno does at start */
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "c_relay: --host must be an IPv4 address, not \"%s\"\n", host);
        return 2;
    }
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) die("socket");
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(listen_fd, SOMAXCONN) < 0) die("listen");
    socklen_t len = sizeof addr;
    getsockname(listen_fd, (struct sockaddr *)&addr, &len);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &LISTENER_MARK};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0) die("epoll_ctl listener");
    /* stdin may be a file or /dev/null, which epoll refuses (EPERM): no operator then. */
    ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &STDIN_MARK};
    bool has_stdin = epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) == 0;

    rooms[nrooms++] = calloc(1, sizeof(struct room)); /* the lobby, named "" */
    if (rooms[0] == NULL) die("calloc");

    char first[64];
    int n = snprintf(first, sizeof first, "listening on %s:%d\n", host, ntohs(addr.sin_port));
    out_append(first, (size_t)n);
    flush_log();

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int ready = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (ready < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < ready; i++) {
            void *ptr = events[i].data.ptr;
            uint32_t what = events[i].events;
            if (ptr == &LISTENER_MARK) {
                accept_all();
            } else if (ptr == &STDIN_MARK) {
                if (!on_stdin() && has_stdin) {
                    epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
                    has_stdin = false;
                }
            } else {
                struct peer *p = ptr;
                if (p->dead) continue;
                if (what & EPOLLOUT) {
                    p->writable = true;
                    mark_dirty(p);
                }
                if (p->closing) {
                    if (what & (EPOLLERR | EPOLLHUP)) kill_peer(p);
                } else if (what & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                    on_readable(p);
                }
            }
        }
        /* Each peer written once this round, over everything queued for it. Flushing
           may kill a peer, which can queue "left" notices: those are new dirty entries
           at the end of the list, flushed in the same loop. */
        for (size_t i = 0; i < ndirty; i++) flush_peer(dirty[i]);
        ndirty = 0;
        flush_log();
        for (size_t i = 0; i < ndead; i++) free(graveyard[i]);
        ndead = 0;
    }
}
