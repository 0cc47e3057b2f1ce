/*
 * WebSocket load generator for bench/fanout.py (issue #3), in C.
 *
 * A drop-in replacement for loadgen.mjs (same argument, same stdout) that costs a small
 * fraction of its CPU: at 50,000 messages/s the Node generator takes a whole core of this
 * 2-core machine from the server it is measuring. The reference figures were made
 * with a C generator.
 *
 * One thread, one epoll loop, N plain-TCP ws:// connections (no TLS, no extension
 * offered, so no permessage-deflate). RFC 6455 client side: a random Sec-WebSocket-Key,
 * the 101 status checked, every client frame masked with a random key (section 5.3),
 * server frames parsed incrementally (7-, 16- and 64-bit lengths, many frames per read,
 * one frame over many reads, fragmented messages reassembled), ping answered with pong
 * and close with close. The Sec-WebSocket-Accept value is not verified (no SHA-1 here):
 * the peer is our own server.
 *
 * Usage: loadgen '{"url":"ws://127.0.0.1:8000/ws/","n":1000,"mode":"ours",
 *                  "channel":"prices:BTC","expect":500,"concurrency":200}'
 *   mode "ours": wait for `welcome`, send `subscribe`, ready on `subscribed` (an `error`
 *   is fatal); application pings are answered; the snapshot after subscribing is skipped.
 *   mode "naive": ready when the WebSocket is open; every frame is a publication.
 * stdout: {"event":"ready","connect_s":...} once all N connections are ready, then, after
 * the line "stop" on stdin (or end of input), {"event":"stats",...} (see print_stats).
 * Errors before ready exit with status 1 and a message on stderr.
 *
 * Many symbols per client (bench/prices_streams.py): "subs":S (with "channels":K) makes
 *   connection i subscribe to CHANNEL + ((i*S + j) mod K) for j < S, ready once all S are
 *   subscribed; "time_key":"quoted_at" takes the send time (ms) from that field, and
 *   "loss":false records every publication's latency without the `n` bitmap (prices carry
 *   no `n`; bench/prices_streams.py audits loss by `seq`).
 * Many channels (bench/live_path.py): "channels":K makes connection i subscribe to
 *   CHANNEL + (i mod K) (mode "ours": the subscribe frame; other modes: "ch=" in the
 *   URL's query). Publication n goes to channel channel_of(n) (a fixed hash, also in
 *   bench/live_path.py), so each connection expects exactly its channel's numbers.
 * mode "sio": Socket.IO 4 over a plain WebSocket (Engine.IO v4): "40" after the open
 *   packet, ready on the "40" reply, "2" pings answered with "3", publications "42[...]".
 *
 * Build: cc -O2 -Wall -o var/loadgen bench/loadgen/loadgen.c (bench/fanout.py does it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
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
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Events taken per epoll_wait: one turn of the loop serves up to this many sockets. */
#define MAX_EVENTS 1024
/* Shared read buffer: one recv per readable socket per turn, so a busy socket cannot
 * starve the others; 256 KiB holds hundreds of 200-byte frames. */
#define IOBUF_SIZE (256 * 1024)
/* Smallest read into a connection's own buffer (used only while a frame is incomplete). */
#define READ_MIN 4096
/* A 101 response longer than this is not one. */
#define MAX_HEADER 16384
/* Larger messages fail the connection instead of exhausting memory. */
#define MAX_MESSAGE ((uint64_t)64 << 20)
/* Like loadgen.mjs: a number is parsed from at most 24 characters after its key. */
#define NUMBER_SPAN 24
/* The epoll id of stdin; connections use their index. */
#define STDIN_ID UINT32_MAX

enum state { CONNECTING, HANDSHAKE, OPEN, READY, CLOSED };

struct conn {
    int fd;
    enum state state;
    bool want_out;           /* EPOLLOUT registered: wbuf has bytes the socket refused */
    bool in_message;         /* inside a fragmented message */
    long subscribed;         /* "subscribed" replies received (ready at cfg.subs) */
    unsigned char *rbuf;     /* bytes of an incomplete frame carried to the next read */
    size_t rlen, rcap, need; /* need: that frame's full size once its header is known */
    unsigned char *wbuf;
    size_t wlen, wcap;
    unsigned char *msg; /* fragments reassembled so far */
    size_t mlen, mcap;
};

static struct {
    char url[1024], mode[16], channel[256];
    long n, expect, concurrency, channels, subs;
    bool loss;
    char time_key[64];
    bool sio;
    bool deflate, ours;
    char host[256], port[16], path[768], host_header[300];
    struct sockaddr_storage addr;
    socklen_t addrlen;
} cfg = {.concurrency = 200, .subs = 1, .loss = true, .time_key = "\"t\":"};

static struct conn *conns;
static int epfd;
static unsigned char *iobuf;
static long next_index, pending, ready_count;
static double started_s, cpu_at_ready;

/* Accounting, as in loadgen.mjs: `seen` is one bitmap of `expect` bits per connection. */
static uint8_t *seen;
static size_t seen_stride;
static double *latencies;
static size_t latency_cap;
static unsigned long long received, unexpected, duplicates, closed_early;
static bool reported_close;

static void print_stats(void);

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now_ms(void) { /* wall clock: the publisher stamps `t` with time.time() */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double monotonic_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* RFC 6455 wants keys and masks from a strong source of entropy; they are rare here
 * (one handshake per connection, masks only on subscribe and pongs). */
static void random_bytes(void *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t r = getrandom((char *)buf + got, len - got, 0);
        if (r < 0 && errno != EINTR)
            die("getrandom: %s", strerror(errno));
        if (r > 0)
            got += (size_t)r;
    }
}

static void reserve(unsigned char **buf, size_t *cap, size_t want) {
    if (*cap >= want)
        return;
    size_t size = *cap ? *cap : 256;
    while (size < want)
        size *= 2;
    unsigned char *grown = realloc(*buf, size);
    if (!grown)
        die("out of memory (%zu bytes)", size);
    *buf = grown;
    *cap = size;
}

/* --- configuration: the flat JSON object loadgen.mjs takes ----------------------- */

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* A JSON string at p into out; the position after it, or NULL. ASCII only (\u rejected). */
static const char *parse_string(const char *p, char *out, size_t cap) {
    size_t len = 0;
    if (*p++ != '"')
        return NULL;
    for (; *p != '"'; p++) {
        char ch = *p;
        if (ch == '\0' || len + 1 >= cap)
            return NULL;
        if (ch == '\\') {
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            const char *at = *++p ? strchr(from, *p) : NULL;
            if (!at)
                return NULL;
            ch = to[at - from];
        }
        out[len++] = ch;
    }
    out[len] = '\0';
    return p + 1;
}

static void set_option(const char *key, const char *text, double number, int boolean) {
    if (!strcmp(key, "url") && text)
        snprintf(cfg.url, sizeof cfg.url, "%s", text);
    else if (!strcmp(key, "mode") && text)
        snprintf(cfg.mode, sizeof cfg.mode, "%s", text);
    else if (!strcmp(key, "channel") && text)
        snprintf(cfg.channel, sizeof cfg.channel, "%s", text);
    else if (!strcmp(key, "n") && !text && boolean < 0)
        cfg.n = (long)number;
    else if (!strcmp(key, "expect") && !text && boolean < 0)
        cfg.expect = (long)number;
    else if (!strcmp(key, "concurrency") && !text && boolean < 0)
        cfg.concurrency = (long)number;
    else if (!strcmp(key, "channels") && !text && boolean < 0)
        cfg.channels = (long)number;
    else if (!strcmp(key, "subs") && !text && boolean < 0)
        cfg.subs = (long)number;
    else if (!strcmp(key, "loss") && boolean >= 0)
        cfg.loss = boolean;
    else if (!strcmp(key, "time_key") && text && strlen(text) < sizeof cfg.time_key - 4)
        snprintf(cfg.time_key, sizeof cfg.time_key, "\"%s\":", text);
    else if (!strcmp(key, "deflate") && boolean >= 0)
        cfg.deflate = boolean;
    else if (strcmp(key, "deflate") && strcmp(key, "concurrency"))
        die("config: bad or unknown value for \"%s\"", key);
}

static void parse_url(void) {
    const char *p = cfg.url;
    if (strncmp(p, "ws://", 5))
        die("url must start with ws:// (no TLS): %s", cfg.url);
    p += 5;
    const char *host_end;
    if (*p == '[') { /* [IPv6]:port */
        host_end = strchr(p, ']');
        if (!host_end)
            die("bad url: %s", cfg.url);
        snprintf(cfg.host, sizeof cfg.host, "%.*s", (int)(host_end - p - 1), p + 1);
        host_end++;
    } else {
        host_end = p + strcspn(p, ":/");
        snprintf(cfg.host, sizeof cfg.host, "%.*s", (int)(host_end - p), p);
    }
    const char *path = strchr(host_end, '/');
    if (*host_end == ':')
        snprintf(cfg.port, sizeof cfg.port, "%.*s", (int)((path ? path : host_end + strlen(host_end)) - host_end - 1),
                 host_end + 1);
    else
        snprintf(cfg.port, sizeof cfg.port, "80");
    snprintf(cfg.host_header, sizeof cfg.host_header, "%.*s", (int)((path ? path : p + strlen(p)) - p), p);
    snprintf(cfg.path, sizeof cfg.path, "%s", path ? path : "/");

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(cfg.host, cfg.port, &hints, &res);
    if (rc)
        die("cannot resolve %s:%s: %s", cfg.host, cfg.port, gai_strerror(rc));
    memcpy(&cfg.addr, res->ai_addr, res->ai_addrlen);
    cfg.addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

static void parse_config(const char *text) {
    const char *p = skip_ws(text);
    if (*p++ != '{')
        die("config: expected a JSON object");
    p = skip_ws(p);
    while (*p != '}') {
        char key[64], value[1024];
        if (!(p = parse_string(p, key, sizeof key)))
            die("config: bad key");
        p = skip_ws(p);
        if (*p++ != ':')
            die("config: expected ':' after \"%s\"", key);
        p = skip_ws(p);
        if (*p == '"') {
            if (!(p = parse_string(p, value, sizeof value)))
                die("config: bad string for \"%s\"", key);
            set_option(key, value, 0, -1);
        } else if (!strncmp(p, "true", 4) || !strncmp(p, "false", 5)) {
            set_option(key, NULL, 0, *p == 't');
            p += *p == 't' ? 4 : 5;
        } else if (!strncmp(p, "null", 4)) {
            p += 4; /* absent: keep the default */
        } else {
            char *end;
            double number = strtod(p, &end);
            if (end == p)
                die("config: unsupported value for \"%s\" (flat objects only)", key);
            set_option(key, NULL, number, -1);
            p = end;
        }
        p = skip_ws(p);
        if (*p == ',')
            p = skip_ws(p + 1);
        else if (*p != '}')
            die("config: expected ',' or '}'");
    }
    cfg.ours = !strcmp(cfg.mode, "ours");
    cfg.sio = !strcmp(cfg.mode, "sio");
    if (!cfg.ours && !cfg.sio && strcmp(cfg.mode, "naive"))
        die("config: mode must be \"ours\", \"naive\" or \"sio\"");
    if (cfg.n < 1 || cfg.expect < 0 || cfg.concurrency < 1)
        die("config: n and concurrency must be >= 1, expect >= 0");
    if (cfg.subs < 1 || (cfg.subs > 1 && cfg.channels < 1))
        die("config: subs must be >= 1, and more than one needs \"channels\"");
    if (cfg.deflate)
        die("config: permessage-deflate is not supported by the C load generator (use --loadgen node)");
    if (cfg.ours && !cfg.channel[0])
        die("config: mode \"ours\" needs a channel");
    /* The channel is pasted into the subscribe frame as is: refuse what would need escaping. */
    for (const char *c = cfg.channel; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
            die("config: unsupported character in channel");
    parse_url();
}

/* The channel of publication n among K (Knuth's multiplicative hash; bench/live_path.py). */
static long channel_of(long n) { return cfg.channels > 0 ? (long)((uint32_t)((uint32_t)n * 2654435761u) % (uint32_t)cfg.channels) : 0; }

/* --- writing ------------------------------------------------------------------------ */

static void set_events(struct conn *c) {
    struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.u32 = (uint32_t)(c - conns)};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
}

static void conn_fail(struct conn *c, const char *fmt, ...) {
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (c->state != READY) /* loadgen.mjs rejects, and the run fails, before ready */
        die("connection %ld: %s", (long)(c - conns), reason);
    closed_early++;
    if (!reported_close) {
        reported_close = true;
        fprintf(stderr, "loadgen: connection %ld closed early: %s\n", (long)(c - conns), reason);
    }
    close(c->fd); /* buffers are kept: a caller may still hold a pointer into them */
    c->state = CLOSED;
}

static void conn_flush(struct conn *c) {
    size_t off = 0;
    while (off < c->wlen) {
        ssize_t w = send(c->fd, c->wbuf + off, c->wlen - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w < 0) {
            conn_fail(c, "send: %s", strerror(errno));
            return;
        }
        off += (size_t)w;
    }
    memmove(c->wbuf, c->wbuf + off, c->wlen - off);
    c->wlen -= off;
    if ((c->wlen > 0) != c->want_out) {
        c->want_out = c->wlen > 0;
        set_events(c);
    }
}

/* One masked frame (RFC 6455 5.2-5.3): every client frame is masked. */
static void ws_send(struct conn *c, int opcode, const void *payload, size_t len) {
    unsigned char header[14];
    size_t h = 0;
    header[h++] = 0x80 | opcode; /* FIN: never fragmented */
    if (len < 126) {
        header[h++] = 0x80 | len;
    } else if (len < 65536) {
        header[h++] = 0x80 | 126;
        header[h++] = len >> 8;
        header[h++] = len & 0xff;
    } else {
        header[h++] = 0x80 | 127;
        for (int shift = 56; shift >= 0; shift -= 8)
            header[h++] = ((uint64_t)len >> shift) & 0xff;
    }
    unsigned char *mask = header + h;
    random_bytes(mask, 4);
    h += 4;
    reserve(&c->wbuf, &c->wcap, c->wlen + h + len);
    memcpy(c->wbuf + c->wlen, header, h);
    unsigned char *dst = c->wbuf + c->wlen + h;
    const unsigned char *src = payload;
    for (size_t i = 0; i < len; i++)
        dst[i] = src[i] ^ mask[i & 3];
    c->wlen += h + len;
    conn_flush(c);
}

static void send_text(struct conn *c, const char *text) { ws_send(c, 0x1, text, strlen(text)); }

/* --- connecting ---------------------------------------------------------------------- */

static void announce_ready(void) {
    printf("{\"event\":\"ready\",\"connect_s\":%.3f}\n", monotonic_s() - started_s);
    fflush(stdout);
    cpu_at_ready = cpu_seconds();
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = STDIN_ID};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0)
        die("epoll_ctl(stdin): %s", strerror(errno));
}

static void on_connected(struct conn *c);

static void start_connection(long i) {
    struct conn *c = &conns[i];
    int fd = socket(cfg.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* pongs must not wait */
    c->fd = fd;
    c->state = CONNECTING;
    c->want_out = true;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    pending++;
    if (connect(fd, (struct sockaddr *)&cfg.addr, cfg.addrlen) == 0)
        on_connected(c);
    else if (errno != EINPROGRESS)
        die("connect to %s:%s: %s", cfg.host, cfg.port, strerror(errno));
}

/* Like loadgen.mjs's workers: at most `concurrency` connections between connect and ready. */
static void launch_more(void) {
    while (pending < cfg.concurrency && next_index < cfg.n)
        start_connection(next_index++);
}

static void mark_ready(struct conn *c) {
    c->state = READY;
    pending--;
    if (++ready_count == cfg.n)
        announce_ready();
    else
        launch_more();
}

static void on_connected(struct conn *c) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err)
        conn_fail(c, "connect to %s:%s: %s", cfg.host, cfg.port, strerror(err));
    unsigned char nonce[16];
    char key[25], request[2048];
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    random_bytes(nonce, sizeof nonce);
    for (int i = 0, o = 0; i < 16; i += 3) { /* base64 of 16 bytes: 5 full groups + 1 byte */
        uint32_t v = nonce[i] << 16 | (i + 1 < 16 ? nonce[i + 1] << 8 : 0) | (i + 2 < 16 ? nonce[i + 2] : 0);
        key[o++] = b64[v >> 18 & 63];
        key[o++] = b64[v >> 12 & 63];
        key[o++] = i + 1 < 16 ? b64[v >> 6 & 63] : '=';
        key[o++] = i + 2 < 16 ? b64[v & 63] : '=';
    }
    key[24] = '\0';
    char path[1100];
    if (cfg.channels > 0 && !cfg.ours)
        snprintf(path, sizeof path, "%s%sch=%s%ld", cfg.path, strchr(cfg.path, '?') ? "&" : "?", cfg.channel,
                 (long)(c - conns) % cfg.channels);
    else
        snprintf(path, sizeof path, "%s", cfg.path);
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, cfg.host_header, key);
    c->state = HANDSHAKE;
    reserve(&c->wbuf, &c->wcap, (size_t)n);
    memcpy(c->wbuf, request, (size_t)n);
    c->wlen = (size_t)n;
    conn_flush(c);
}

/* --- reading ------------------------------------------------------------------------- */

/* Position of the JSON value after `"key":` (first occurrence), or NULL. */
static const char *value_after(const char *s, size_t len, const char *key, size_t keylen) {
    const char *at = memmem(s, len, key, keylen);
    if (!at)
        return NULL;
    const char *p = at + keylen, *end = s + len;
    while (p < end && (*p == ' ' || *p == ':'))
        p++;
    return p < end ? p : NULL;
}

/* parseFloat of the NUMBER_SPAN characters after `key`, as loadgen.mjs does; NaN if none. */
static double number_after(const char *s, size_t len, const char *key, size_t keylen) {
    const char *p = value_after(s, len, key, keylen);
    if (!p)
        return __builtin_nan("");
    char digits[NUMBER_SPAN + 1];
    size_t n = (size_t)(s + len - p) < NUMBER_SPAN ? (size_t)(s + len - p) : NUMBER_SPAN;
    memcpy(digits, p, n);
    digits[n] = '\0';
    char *end;
    double value = strtod(digits, &end);
    return end == digits ? __builtin_nan("") : value;
}

/* The raw JSON token (a string with its quotes, or a number) after `key`; its length or 0. */
static size_t token_after(const char *s, size_t len, const char *key, size_t keylen, const char **out) {
    const char *p = value_after(s, len, key, keylen), *end = s + len, *q;
    if (!p)
        return 0;
    if (*p == '"') {
        for (q = p + 1; q < end && *q != '"'; q++)
            if (*q == '\\')
                q++;
        if (q >= end)
            return 0;
        q++;
    } else {
        for (q = p; q < end && !strchr(",}] \t\r\n", *q); q++)
            ;
    }
    *out = p;
    return (size_t)(q - p);
}

static bool type_is(const char *s, size_t len, const char *quoted) {
    const char *token;
    size_t n = token_after(s, len, "\"type\"", 6, &token);
    return n == strlen(quoted) && !memcmp(token, quoted, n);
}

/* A protocol frame (not a publication) in mode "ours". */
static void on_protocol_frame(struct conn *c, const char *s, size_t len) {
    if (type_is(s, len, "\"ping\"")) { /* the gateway's heartbeat: echo its id */
        char pong[160];
        const char *id;
        size_t idlen = token_after(s, len, "\"id\"", 4, &id);
        if (idlen && idlen < 128)
            snprintf(pong, sizeof pong, "{\"type\":\"pong\",\"id\":%.*s}", (int)idlen, id);
        else
            snprintf(pong, sizeof pong, "{\"type\":\"pong\"}");
        send_text(c, pong);
    } else if (c->state == OPEN && type_is(s, len, "\"welcome\"")) {
        char subscribe[400];
        if (cfg.subs > 1) {
            for (long j = 0; j < cfg.subs; j++) {
                snprintf(subscribe, sizeof subscribe, "{\"type\":\"subscribe\",\"id\":%ld,\"channel\":\"%s%ld\"}",
                         j + 1, cfg.channel, ((long)(c - conns) * cfg.subs + j) % cfg.channels);
                send_text(c, subscribe);
            }
            return;
        }
        if (cfg.channels > 0)
            snprintf(subscribe, sizeof subscribe, "{\"type\":\"subscribe\",\"id\":1,\"channel\":\"%s%ld\"}",
                     cfg.channel, (long)(c - conns) % cfg.channels);
        else
            snprintf(subscribe, sizeof subscribe, "{\"type\":\"subscribe\",\"id\":1,\"channel\":\"%s\"}", cfg.channel);
        send_text(c, subscribe);
    } else if (c->state == OPEN && type_is(s, len, "\"subscribed\"")) {
        if (++c->subscribed >= cfg.subs)
            mark_ready(c); /* the snapshot that may follow is skipped by on_message */
    } else if (c->state == OPEN && type_is(s, len, "\"error\"")) {
        conn_fail(c, "error frame: %.*s", (int)(len < 400 ? len : 400), s);
    } else if (c->state == READY && (len == 0 || s[0] != '{')) {
        unexpected++; /* loadgen.mjs: not JSON */
    }
}

/* One complete text message; `now` is when its last bytes were read. The hot path: a
 * prefix check and three substring scans, no JSON parser (as in loadgen.mjs). */
static void on_message(struct conn *c, const unsigned char *data, size_t len, double now) {
    const char *s = (const char *)data;
    static const char prefix[] = "{\"type\":\"message\"";
    if (cfg.ours && (c->state != READY || len < sizeof prefix - 1 || memcmp(s, prefix, sizeof prefix - 1))) {
        on_protocol_frame(c, s, len);
        return;
    }
    if (cfg.sio && (len < 2 || s[0] != '4' || s[1] != '2')) { /* Engine.IO/Socket.IO control packets */
        if (len >= 1 && s[0] == '0' && c->state == OPEN)
            send_text(c, "40"); /* connect to the main namespace */
        else if (len >= 2 && s[0] == '4' && s[1] == '0' && c->state == OPEN)
            mark_ready(c);
        else if (len == 1 && s[0] == '2')
            send_text(c, "3"); /* Engine.IO heartbeat */
        return;
    }
    if (c->state != READY) /* naive mode is ready on open: nothing arrives before */
        return;
    if (memmem(s, len, "\"snapshot\":true", 15)) /* the latest value on subscribe, not a publication */
        return;
    double t = number_after(s, len, cfg.time_key, strlen(cfg.time_key));
    if (!cfg.loss) { /* latency of every publication; loss is audited elsewhere */
        if (t != t) {
            unexpected++;
            return;
        }
        if (received < latency_cap)
            latencies[received] = now - t;
        received++;
        return;
    }
    double n = number_after(s, len, "\"n\":", 4);
    /* NaN fails every comparison. A missing `t` counts as unexpected (loadgen.mjs would
     * record a NaN latency). */
    if (!(n >= 0 && n < cfg.expect && n == (double)(long)n) || t != t) {
        unexpected++;
        return;
    }
    size_t bit = (size_t)n;
    uint8_t *byte = seen + (size_t)(c - conns) * seen_stride + bit / 8;
    if (*byte & (1u << (bit % 8)))
        duplicates++;
    else
        *byte |= 1u << (bit % 8);
    if (received < latency_cap)
        latencies[received] = now - t;
    received++;
}

/* One frame; false if the connection is gone. */
static bool on_frame(struct conn *c, bool fin, int opcode, const unsigned char *payload, size_t len, double now) {
    switch (opcode) {
    case 0x1: /* text */
    case 0x2: /* binary: read as text, like loadgen.mjs's raw.toString() */
        if (c->in_message) {
            conn_fail(c, "new message before the end of a fragmented one");
            return false;
        }
        if (fin) {
            on_message(c, payload, len, now);
            break;
        }
        c->in_message = true;
        c->mlen = 0;
        /* fall through: the first fragment is appended like a continuation */
    case 0x0: /* continuation */
        if (!c->in_message) {
            conn_fail(c, "continuation frame outside a fragmented message");
            return false;
        }
        if (c->mlen + len > MAX_MESSAGE) {
            conn_fail(c, "fragmented message larger than %llu bytes", (unsigned long long)MAX_MESSAGE);
            return false;
        }
        reserve(&c->msg, &c->mcap, c->mlen + len);
        memcpy(c->msg + c->mlen, payload, len);
        c->mlen += len;
        if (fin) {
            c->in_message = false;
            on_message(c, c->msg, c->mlen, now);
        }
        break;
    case 0x8: { /* close: echo the status code, then drop the connection */
        unsigned code = len >= 2 ? (unsigned)(payload[0] << 8 | payload[1]) : 1005;
        ws_send(c, 0x8, payload, len >= 2 ? 2 : 0);
        if (c->state != CLOSED)
            conn_fail(c, "closed by the server with code %u: %.*s", code, (int)(len > 2 ? len - 2 : 0),
                      (const char *)payload + 2);
        return false;
    }
    case 0x9: /* ping */
        ws_send(c, 0xA, payload, len);
        break;
    case 0xA: /* pong */
        break;
    default:
        conn_fail(c, "unknown opcode %d", opcode);
        return false;
    }
    return c->state != CLOSED;
}

/* Handshake response and frames in buf[0..len); bytes consumed, or SIZE_MAX if closed. */
static size_t consume(struct conn *c, const unsigned char *buf, size_t len, double now) {
    size_t off = 0;
    if (c->state == HANDSHAKE) {
        const unsigned char *end = memmem(buf, len, "\r\n\r\n", 4);
        if (!end) {
            if (len > MAX_HEADER)
                conn_fail(c, "handshake response longer than %d bytes", MAX_HEADER);
            return c->state == CLOSED ? SIZE_MAX : 0;
        }
        if (len < 12 || memcmp(buf, "HTTP/1.1 101", 12)) {
            conn_fail(c, "handshake refused: %.*s", (int)strcspn((const char *)buf, "\r"), (const char *)buf);
            return SIZE_MAX;
        }
        off = (size_t)(end - buf) + 4;
        c->state = OPEN;
        if (!cfg.ours && !cfg.sio)
            mark_ready(c);
    }
    while (c->state != CLOSED && len - off >= 2) {
        const unsigned char *p = buf + off;
        size_t avail = len - off, header = 2;
        uint64_t size = p[1] & 0x7f;
        if (size == 126) {
            if (avail < 4)
                break;
            size = (uint64_t)p[2] << 8 | p[3];
            header = 4;
        } else if (size == 127) {
            if (avail < 10)
                break;
            size = 0;
            for (int i = 2; i < 10; i++)
                size = size << 8 | p[i];
            header = 10;
        }
        if (p[0] & 0x70) {
            conn_fail(c, "reserved bits set in a frame header (no extension was negotiated)");
            break;
        }
        if (p[1] & 0x80) {
            conn_fail(c, "masked frame from the server (RFC 6455 5.1)");
            break;
        }
        if (size > MAX_MESSAGE) {
            conn_fail(c, "frame of %llu bytes is larger than the limit", (unsigned long long)size);
            break;
        }
        if (avail < header + size) {
            c->need = header + (size_t)size; /* the next read can make room for all of it */
            break;
        }
        c->need = 0;
        off += header + (size_t)size;
        if (!on_frame(c, p[0] & 0x80, p[0] & 0x0f, p + header, (size_t)size, now))
            break;
    }
    return c->state == CLOSED ? SIZE_MAX : off;
}

static void on_readable(struct conn *c) {
    /* Read into the shared buffer unless an incomplete frame is waiting in the
     * connection's own buffer: then read after it (with room for the whole frame). */
    unsigned char *buf = iobuf;
    size_t cap = IOBUF_SIZE;
    if (c->rlen) {
        reserve(&c->rbuf, &c->rcap, c->need > c->rlen + READ_MIN ? c->need : c->rlen + READ_MIN);
        buf = c->rbuf;
        cap = c->rcap;
    }
    ssize_t r = recv(c->fd, buf + c->rlen, cap - c->rlen, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (r <= 0) {
        conn_fail(c, r ? strerror(errno) : "connection closed without a close frame");
        return;
    }
    double now = now_ms(); /* one clock read per recv: the arrival time of its frames */
    size_t total = c->rlen + (size_t)r, used = consume(c, buf, total, now);
    if (used == SIZE_MAX)
        return;
    size_t left = total - used;
    if (buf == iobuf && left) {
        reserve(&c->rbuf, &c->rcap, left > c->need ? left : c->need);
        memcpy(c->rbuf, iobuf + used, left);
    } else if (buf != iobuf && used) {
        memmove(c->rbuf, c->rbuf + used, left);
    }
    c->rlen = left;
}

static void on_stdin(void) {
    static char line[256];
    static size_t len;
    ssize_t r = read(STDIN_FILENO, line + len, sizeof line - 1 - len);
    if (r < 0 && errno == EINTR)
        return;
    if (r <= 0) { /* end of input: the parent is gone; report anyway */
        print_stats();
        exit(0);
    }
    len += (size_t)r;
    line[len] = '\0';
    char *nl;
    while ((nl = strchr(line, '\n'))) {
        *nl = '\0';
        char *word = (char *)skip_ws(line);
        size_t n = strlen(word);
        while (n && (word[n - 1] == ' ' || word[n - 1] == '\r' || word[n - 1] == '\t'))
            word[--n] = '\0';
        if (!strcmp(word, "stop")) {
            print_stats();
            exit(0);
        }
        len -= (size_t)(nl + 1 - line);
        memmove(line, nl + 1, len + 1);
    }
    if (len == sizeof line - 1) /* a long line that is not "stop" */
        len = 0;
}

/* --- report -------------------------------------------------------------------------- */

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* loadgen.mjs's percentile: sample[min(count - 1, floor(p * count))], null when empty. */
static void percentile(char *out, size_t cap, size_t count, double p) {
    size_t at = (size_t)(p * (double)count);
    if (count)
        snprintf(out, cap, "%.3f", latencies[at < count - 1 ? at : count - 1]);
    else
        snprintf(out, cap, "null");
}

static void print_stats(void) {
    double cpu = cpu_seconds() - cpu_at_ready;
    size_t count = received < latency_cap ? (size_t)received : latency_cap;
    qsort(latencies, count, sizeof *latencies, compare_doubles);
    char p50[32], p99[32], max[32];
    percentile(p50, sizeof p50, count, 0.5);
    percentile(p99, sizeof p99, count, 0.99);
    percentile(max, sizeof max, count, 1.0);
    unsigned long long unique = 0, expected = 0;
    if (cfg.channels > 0) {
        unsigned long long *per = calloc((size_t)cfg.channels, sizeof *per);
        for (long k = 0; k < cfg.expect; k++)
            per[channel_of(k)]++;
        for (long i = 0; i < cfg.n; i++)
            expected += per[i % cfg.channels];
        free(per);
    } else
        expected = (unsigned long long)cfg.n * (unsigned long long)cfg.expect;
    for (size_t i = 0; i < (size_t)cfg.n * seen_stride; i++)
        unique += (unsigned long long)__builtin_popcount(seen[i]);
    printf("{\"event\":\"stats\",\"received\":%llu,\"unique\":%llu,\"expected\":%llu,\"lost\":%lld,"
           "\"duplicates\":%llu,\"unexpected\":%llu,\"closed_early\":%llu,\"p50_ms\":%s,\"p99_ms\":%s,"
           "\"max_ms\":%s,\"loadgen_cpu_s\":%.6f}\n",
           received, unique, expected, (long long)(expected - unique), duplicates, unexpected, closed_early, p50, p99,
           max, cpu);
    fflush(stdout);
}

/* --- main ---------------------------------------------------------------------------- */

/* Thousands of sockets need more than the usual soft limit of 1,024 descriptors. */
static void raise_fd_limit(long n) {
    struct rlimit rl;
    rlim_t want = (rlim_t)n + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    struct rlimit up = {.rlim_cur = want, .rlim_max = rl.rlim_max >= want ? rl.rlim_max : want};
    if (setrlimit(RLIMIT_NOFILE, &up) == 0) /* raising the hard limit needs privilege */
        return;
    up.rlim_cur = up.rlim_max = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &up);
    if (rl.rlim_max < want)
        die("%ld connections need %lu open files; the hard limit is %lu", n, (unsigned long)want,
            (unsigned long)rl.rlim_max);
}

int main(int argc, char **argv) {
    if (argc != 2)
        die("usage: loadgen '{\"url\":\"ws://host:port/path\",\"n\":N,\"mode\":\"ours\"|\"naive\","
            "\"channel\":CH,\"expect\":M,\"concurrency\":200}'");
    parse_config(argv[1]);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(cfg.n);

    conns = calloc((size_t)cfg.n, sizeof *conns);
    iobuf = malloc(IOBUF_SIZE);
    seen_stride = ((size_t)cfg.expect + 7) / 8;
    seen = calloc((size_t)cfg.n * seen_stride + 1, 1);
    /* calloc of a large block maps zero pages: only the samples written cost memory */
    latency_cap = (size_t)cfg.n * (size_t)(cfg.expect > 0 ? cfg.expect : 1);
    latencies = calloc(latency_cap, sizeof *latencies);
    if (!conns || !iobuf || !seen || !latencies)
        die("out of memory");
    if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1: %s", strerror(errno));

    started_s = monotonic_s();
    launch_more();
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int k = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            die("epoll_wait: %s", strerror(errno));
        for (int e = 0; e < k; e++) {
            if (events[e].data.u32 == STDIN_ID) {
                on_stdin();
                continue;
            }
            struct conn *c = &conns[events[e].data.u32];
            if (c->state == CLOSED)
                continue;
            if (c->state == CONNECTING) {
                on_connected(c);
                continue;
            }
            if (events[e].events & EPOLLOUT)
                conn_flush(c);
            if (c->state != CLOSED && events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c);
        }
    }
}
