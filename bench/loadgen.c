/*
 * loadgen: a single-threaded epoll WebSocket load generator for bench/run.mjs.
 *
 * It speaks just enough RFC 6455 as a client: a raw HTTP/1.1 upgrade request
 * (only the "101" status is checked), masked frames (RFC 6455 5.3: every
 * client-to-server frame must be masked, so the server always pays for
 * unmasking), and a parser for unmasked server frames with 7-, 16- and 64-bit
 * lengths (RFC 6455 5.2). With --raw it skips the handshake and treats the
 * echoed bytes as an opaque stream, so the same generator can drive a plain
 * TCP echo server (the bytes that come back are the masked frames it sent).
 *
 * One measurement per run; the result is one JSON line on stdout. Before it,
 * "measure" marks the end of the warm-up (throughput, latency, connrate) and
 * "ready" marks that all connections of hold mode are open. Fanout prints
 * "measure" too.
 *
 *   --mode throughput  C conns, K frames in flight each, size S, D seconds
 *   --mode latency     C conns, one frame in flight each, RTT median/p99 (us)
 *   --mode connrate    C concurrent open -> upgrade -> close(1000) -> EOF cycles
 *   --mode hold        open N upgraded conns, print "ready", hold them until
 *                      stdin reaches EOF, a signal arrives, or --timeout passes
 *   --mode fanout      C subscribers on --sub-path, then one publisher on
 *                      --pub-path sending frames of size S, at most --window W
 *                      messages outstanding; counts the frames every
 *                      subscriber receives (deliveries/s) and times each
 *                      message from the publisher's write to its arrival
 *                      at the sampled subscribers (median/p99 us); with
 *                      --sub-port2 every other subscriber connects to a
 *                      second server (a second node of a cluster)
 *
 * Every loop is bounded: setup by --timeout, measurements by --warmup +
 * --duration, a connrate cycle by --cycle-timeout, hold by --timeout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { M_THROUGHPUT, M_LATENCY, M_CONNRATE, M_HOLD, M_FANOUT };
enum cstate { S_FREE, S_CONNECTING, S_HANDSHAKE, S_OPEN, S_CLOSING };

/* --- options ------------------------------------------------------------ */
static enum mode opt_mode = M_THROUGHPUT;
static const char *opt_host = "127.0.0.1";
static int opt_port = 0;
static const char *opt_path = "/";
static int opt_conns = 100;
static int opt_inflight = 1;
static size_t opt_size = 64;
static int opt_binary = 0;
static int opt_raw = 0;
static double opt_duration = 3.0;
static double opt_warmup = 1.0;
static double opt_timeout = 20.0;       /* setup bound; hold bound */
static double opt_cycle_timeout = 5.0;  /* connrate: one cycle */
static int opt_concurrency = 200;       /* hold, fanout: handshakes in progress */
static const char *opt_sub_path = "/sub"; /* fanout */
static const char *opt_pub_path = "/pub";
static int opt_window = 256;            /* fanout: messages outstanding */
static int opt_sampled = 8;             /* fanout: subscribers that define "done" */
static int opt_port2 = 0;               /* fanout: odd-numbered subscribers connect here */

#define SEQ_DIGITS 16  /* fanout: the payload starts with the sequence number in hex */

/* --- connection --------------------------------------------------------- */
struct conn {
  int fd;
  int state;
  int armed_out;        /* EPOLLOUT currently requested */
  uint8_t ctl[512];     /* one-off bytes: upgrade request, close frame */
  size_t ctl_len, ctl_off;
  size_t pending;       /* bytes of the message stream not yet written */
  char resp[1024];      /* upgrade response being collected */
  size_t resp_len;
  /* frame parser (server -> client frames are unmasked, RFC 6455 5.1) */
  uint8_t hdr[14];
  unsigned hdr_len, hdr_need;
  int in_payload, opcode, fin, got_close;
  uint64_t payload_left, msg_bytes;
  uint64_t raw_rx;      /* --raw: echoed bytes not yet a whole frame */
  uint64_t t_sent;      /* latency: when the in-flight frame left */
  uint64_t t_start;     /* connrate/hold: when this cycle began */
  /* fanout, sampled subscribers: the sequence number at the start of each
   * message's payload, and how far this subscriber has got */
  int sampled;
  uint8_t seq_text[SEQ_DIGITS];
  uint64_t seq_next;    /* 1 + the last sequence number received */
};

static struct conn *conns;
static int nconns;
static int ep;
static struct sockaddr_in addr;
static struct sockaddr_in addr2;  /* fanout --sub-port2 */

/* the message stream: K copies of one masked frame, laid end to end */
static uint8_t *msgbuf;
static size_t frame_len;     /* bytes of one frame on the wire */
static size_t msgbuf_len;

static uint64_t now_ns;
static int measuring;
static volatile sig_atomic_t got_signal;

/* counters (reset when the warm-up ends) */
static uint64_t c_msgs, c_payload, c_cycles;
static uint64_t c_errors, c_bad_len, c_timeouts, c_unexpected;
static const char *last_error = "";
static int open_count, active_count;

/* latency samples in nanoseconds */
static uint64_t *samples;
static size_t nsamples, cap_samples;

static const uint8_t mask_key[4] = {0x5a, 0x1c, 0xe3, 0x97};

/* fanout: the publisher is conns[nsubs]; its frames differ (each carries a
 * sequence number), so it has a byte queue of its own instead of msgbuf.
 * At most --window frames are ever queued, which bounds pubq. */
static int nsubs;
static struct conn *pub;
static uint8_t *pubq;
static size_t pubq_len, pubq_off;
static uint64_t pub_seq;              /* messages queued so far */
static uint64_t c_published, c_gaps;  /* published in the window; messages a sampled subscriber missed */
/* when each outstanding message was queued, by sequence number modulo the
 * window: a sampled subscriber only ever receives one of the last W */
static uint64_t *pub_times;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg) {
  printf("{\"ok\":false,\"error\":\"%s\"}\n", msg);
  fflush(stdout);
  exit(1);
}

static void on_signal(int sig) { (void)sig; got_signal = 1; }

/* RFC 6455 5.2: 7-bit length, or 126 + 16-bit, or 127 + 64-bit, then the
 * 4-byte masking key (client frames must be masked, 5.3). */
static size_t write_header(uint8_t *p, int opcode, uint64_t len) {
  size_t n = 0;
  p[n++] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    p[n++] = (uint8_t)(0x80 | len);
  } else if (len <= 0xffff) {
    p[n++] = 0x80 | 126;
    p[n++] = (uint8_t)(len >> 8);
    p[n++] = (uint8_t)len;
  } else {
    p[n++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) p[n++] = (uint8_t)(len >> (8 * i));
  }
  memcpy(p + n, mask_key, 4);
  return n + 4;
}

static void build_messages(void) {
  uint8_t hdr[14];
  size_t hl = write_header(hdr, opt_binary ? 2 : 1, opt_size);
  frame_len = hl + opt_size;
  int k = opt_inflight > 0 ? opt_inflight : 1;
  msgbuf_len = frame_len * (size_t)k;
  msgbuf = malloc(msgbuf_len);
  if (!msgbuf) die("out of memory");
  uint8_t *f = msgbuf;
  memcpy(f, hdr, hl);
  /* text payload must be valid UTF-8 (RFC 6455 8.1): plain ASCII */
  static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  for (size_t i = 0; i < opt_size; i++) {
    uint8_t b = opt_binary ? (uint8_t)(i * 131 + 7) : (uint8_t)alpha[i % 36];
    f[hl + i] = b ^ mask_key[i & 3];
  }
  for (int i = 1; i < k; i++) memcpy(msgbuf + (size_t)i * frame_len, f, frame_len);
}

static void set_out(struct conn *c, int want) {
  if (c->armed_out == want) return;
  struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                           .data.u32 = (uint32_t)(c - conns)};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  c->armed_out = want;
}

static void start_conn(struct conn *c);

/* A connection is gone. What happens next depends on the mode. */
static void drop_conn(struct conn *c, int counted_error, const char *why) {
  if (counted_error) {
    c_errors++;
    last_error = why;
  }
  if (c->state == S_OPEN || c->state == S_CLOSING) open_count--;
  close(c->fd);
  c->fd = -1;
  c->state = S_FREE;
  active_count--;
}

static int flush(struct conn *c) {
  while (c->ctl_off < c->ctl_len) {
    ssize_t n = send(c->fd, c->ctl + c->ctl_off, c->ctl_len - c->ctl_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) { set_out(c, 1); return 0; }
      drop_conn(c, 1, "send failed");
      return -1;
    }
    c->ctl_off += (size_t)n;
  }
  if (c == pub) {
    while (pubq_off < pubq_len) {
      ssize_t n = send(c->fd, pubq + pubq_off, pubq_len - pubq_off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) { set_out(c, 1); return 0; }
        drop_conn(c, 1, "send failed");
        return -1;
      }
      pubq_off += (size_t)n;
    }
    pubq_off = pubq_len = 0;
  }
  while (c->pending > 0) {
    /* every frame in msgbuf is identical, so any start that is the right
     * offset within a frame will do; pending <= K frames keeps it in range */
    size_t pos = (frame_len - c->pending % frame_len) % frame_len;
    ssize_t n = send(c->fd, msgbuf + pos, c->pending, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) { set_out(c, 1); return 0; }
      drop_conn(c, 1, "send failed");
      return -1;
    }
    c->pending -= (size_t)n;
  }
  set_out(c, 0);
  return 0;
}

static void queue_frame(struct conn *c) {
  c->pending += frame_len;
  c->t_sent = now_ns;
}

static void record_sample(uint64_t ns) {
  if (nsamples == cap_samples) {
    cap_samples = cap_samples ? cap_samples * 2 : 65536;
    samples = realloc(samples, cap_samples * sizeof *samples);
    if (!samples) die("out of memory");
  }
  samples[nsamples++] = ns;
}

/* One message is complete: count it and send the next one (echo modes), or
 * count a delivery and note how far a sampled subscriber got (fanout). */
static void on_message(struct conn *c, uint64_t bytes) {
  if (bytes != opt_size) c_bad_len++;
  if (opt_mode == M_FANOUT) {
    if (c == pub) { c_unexpected++; return; } /* the publisher gets nothing back */
    if (measuring) {
      c_msgs++;
      c_payload += bytes;
    }
    if (c->sampled && bytes >= SEQ_DIGITS) {
      uint64_t seq = 0;
      for (int i = 0; i < SEQ_DIGITS; i++) {
        uint8_t d = c->seq_text[i];
        seq = (seq << 4) | (uint64_t)(d <= '9' ? d - '0' : d - 'a' + 10);
      }
      if (seq != c->seq_next) c_gaps += seq > c->seq_next ? seq - c->seq_next : 1;
      c->seq_next = seq + 1;
      if (measuring && seq < pub_seq && pub_seq - seq <= (uint64_t)opt_window)
        record_sample(now_ns - pub_times[seq % (uint64_t)opt_window]);
    }
    return;
  }
  if (measuring) {
    c_msgs++;
    c_payload += bytes;
    if (opt_mode == M_LATENCY) record_sample(now_ns - c->t_sent);
  }
  queue_frame(c);
}

static void send_upgrade(struct conn *c) {
  int n = snprintf((char *)c->ctl, sizeof c->ctl,
                   "GET %s HTTP/1.1\r\n"
                   "Host: %s:%d\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n"
                   "\r\n",
                   opt_mode != M_FANOUT ? opt_path : c == pub ? opt_pub_path : opt_sub_path,
                   opt_host, opt_port);
  c->ctl_len = (size_t)n;
  c->ctl_off = 0;
  c->state = S_HANDSHAKE;
  c->resp_len = 0;
}

/* RFC 6455 5.5.1: close frame, masked, with status code 1000 (normal). */
static void send_close(struct conn *c) {
  size_t n = write_header(c->ctl, 8, 2);
  uint8_t code[2] = {1000 >> 8, 1000 & 0xff};
  c->ctl[n] = code[0] ^ mask_key[0];
  c->ctl[n + 1] = code[1] ^ mask_key[1];
  c->ctl_len = n + 2;
  c->ctl_off = 0;
  c->state = S_CLOSING;
}

static void became_open(struct conn *c) {
  c->state = S_OPEN;
  open_count++;
  c->hdr_len = 0;
  c->hdr_need = 2;
  c->in_payload = 0;
  c->msg_bytes = 0;
  c->raw_rx = 0;
  c->got_close = 0;
  if (opt_mode == M_CONNRATE) send_close(c);
}

static void frame_done(struct conn *c) {
  int op = c->opcode;
  if (op <= 2) {
    if (c->fin) {
      uint64_t b = c->msg_bytes;
      c->msg_bytes = 0;
      if (c->state == S_OPEN && opt_mode != M_CONNRATE && opt_mode != M_HOLD) on_message(c, b);
    }
  } else if (op == 8) {
    c->got_close = 1;
  } else {
    c_unexpected++; /* ping/pong: not expected from an echo server under test */
  }
  c->hdr_len = 0;
  c->hdr_need = 2;
  c->in_payload = 0;
}

/* Parse server frames (RFC 6455 5.2). Payload bytes are only counted. */
static void parse_frames(struct conn *c, const uint8_t *p, size_t n) {
  while (n > 0) {
    if (!c->in_payload) {
      while (n > 0 && c->hdr_len < c->hdr_need) {
        c->hdr[c->hdr_len++] = *p++;
        n--;
        if (c->hdr_len == 2) {
          unsigned l7 = c->hdr[1] & 0x7f;
          c->hdr_need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((c->hdr[1] & 0x80) ? 4 : 0);
        }
      }
      if (c->hdr_len < c->hdr_need) return;
      c->fin = (c->hdr[0] & 0x80) != 0;
      c->opcode = c->hdr[0] & 0x0f;
      unsigned l7 = c->hdr[1] & 0x7f;
      uint64_t len = l7;
      if (l7 == 126) {
        len = ((uint64_t)c->hdr[2] << 8) | c->hdr[3];
      } else if (l7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) len = (len << 8) | c->hdr[2 + i];
      }
      c->payload_left = len;
      c->in_payload = 1;
      if (len == 0) { frame_done(c); continue; }
    }
    size_t take = n < c->payload_left ? n : (size_t)c->payload_left;
    c->payload_left -= take;
    if (c->sampled && c->opcode <= 2 && c->msg_bytes < SEQ_DIGITS) {
      size_t k = SEQ_DIGITS - (size_t)c->msg_bytes;
      memcpy(c->seq_text + c->msg_bytes, p, take < k ? take : k);
    }
    if (c->opcode <= 2) c->msg_bytes += take;
    p += take;
    n -= take;
    if (c->payload_left == 0) frame_done(c);
  }
}

static int handle_handshake_bytes(struct conn *c, const uint8_t *p, size_t n) {
  size_t room = sizeof c->resp - 1 - c->resp_len;
  size_t take = n < room ? n : room;
  memcpy(c->resp + c->resp_len, p, take);
  size_t old = c->resp_len;
  c->resp_len += take;
  c->resp[c->resp_len] = 0;
  char *end = strstr(c->resp, "\r\n\r\n");
  if (!end) {
    if (c->resp_len == sizeof c->resp - 1) { drop_conn(c, 1, "upgrade response too long"); return -1; }
    return 0;
  }
  /* "HTTP/1.1 101 ..." : the status code sits at offset 9 */
  if (c->resp_len < 12 || memcmp(c->resp + 9, "101", 3) != 0) {
    drop_conn(c, 1, "upgrade refused (no 101)");
    return -1;
  }
  size_t hdr_end = (size_t)(end - c->resp) + 4;
  became_open(c);
  size_t used = hdr_end - old; /* bytes of this read that were the header */
  if (used < n) parse_frames(c, p + used, n - used);
  return 0;
}

static void on_eof(struct conn *c) {
  if (opt_mode == M_CONNRATE && c->state == S_CLOSING && c->got_close) {
    if (measuring) c_cycles++;
    drop_conn(c, 0, "");
    start_conn(c);
    return;
  }
  if (opt_mode == M_CONNRATE) {
    drop_conn(c, 1, c->state == S_CLOSING ? "EOF before close frame" : "EOF before upgrade");
    start_conn(c);
    return;
  }
  drop_conn(c, 1, "connection closed by server");
}

static uint8_t rbuf[256 * 1024];

static void do_read(struct conn *c) {
  for (int round = 0; round < 4; round++) {
    ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
    if (n == 0) { on_eof(c); return; }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (opt_mode == M_CONNRATE) {
        drop_conn(c, 1, "recv failed");
        start_conn(c);
      } else {
        drop_conn(c, 1, "recv failed");
      }
      return;
    }
    if (c->state == S_HANDSHAKE) {
      if (handle_handshake_bytes(c, rbuf, (size_t)n) < 0) {
        if (opt_mode == M_CONNRATE) start_conn(c);
        return;
      }
    } else if (opt_raw) {
      /* TCP echo: the echoed bytes are our own frames, count whole ones */
      c->raw_rx += (uint64_t)n;
      while (c->raw_rx >= frame_len) {
        c->raw_rx -= frame_len;
        on_message(c, opt_size);
      }
    } else {
      parse_frames(c, rbuf, (size_t)n);
    }
    if ((size_t)n < sizeof rbuf) break;
  }
  if (c->state != S_FREE && (c->pending > 0 || c->ctl_off < c->ctl_len)) flush(c);
}

static void start_conn(struct conn *c) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (opt_mode == M_HOLD) die("socket() failed (fd limit?)");
    c_errors++;
    last_error = "socket() failed (fd limit?)";
    c->state = S_FREE;
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  memset(c, 0, sizeof *c);
  c->fd = fd;
  c->hdr_need = 2;
  c->t_start = now_ns;
  const struct sockaddr_in *to = &addr;
  if (opt_mode == M_FANOUT && opt_port2 > 0 && c != pub && (c - conns) % 2 == 1) to = &addr2;
  int r = connect(fd, (const struct sockaddr *)to, sizeof *to);
  if (r < 0 && errno != EINPROGRESS) {
    close(fd);
    c->fd = -1;
    c->state = S_FREE;
    c_errors++;
    last_error = "connect() failed";
    return;
  }
  c->state = S_CONNECTING;
  active_count++;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)(c - conns)};
  c->armed_out = 1;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl failed");
}

static void on_connected(struct conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) {
    drop_conn(c, 1, "connect failed");
    if (opt_mode == M_CONNRATE) start_conn(c);
    return;
  }
  if (opt_raw) {
    became_open(c);
    set_out(c, 0);
    return;
  }
  send_upgrade(c);
  flush(c);
}

static void handle_event(struct conn *c, uint32_t events) {
  if (c->state == S_FREE) return;
  if (c->state == S_CONNECTING) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
    return;
  }
  int fd = c->fd;
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) do_read(c);
  /* connrate may have recycled the slot onto a new socket: its events are
   * not these, so leave it alone until epoll reports on it */
  if (c->fd != fd || c->state == S_FREE || c->state == S_CONNECTING) return;
  if (events & EPOLLOUT) flush(c);
}

static double secs(uint64_t ns) { return (double)ns / 1e9; }

/* CPU seconds this process has used (user + system). Reported as a share of
 * the measured wall time so a run shows whether the generator was saturated. */
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen --port P [--host H] [--path /] --mode throughput|latency|connrate|hold|fanout\n"
          "  [--conns C] [--inflight K] [--size S] [--binary|--text] [--raw]\n"
          "  [--duration D] [--warmup W] [--timeout T] [--cycle-timeout T] [--concurrency P]\n"
          "  fanout: [--window W] [--sampled N] [--sub-path /sub] [--pub-path /pub] [--sub-port2 P]\n");
  exit(2);
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
    if (ARG("--mode")) {
      if (!strcmp(v, "throughput")) opt_mode = M_THROUGHPUT;
      else if (!strcmp(v, "latency")) opt_mode = M_LATENCY;
      else if (!strcmp(v, "connrate")) opt_mode = M_CONNRATE;
      else if (!strcmp(v, "hold")) opt_mode = M_HOLD;
      else if (!strcmp(v, "fanout")) opt_mode = M_FANOUT;
      else usage();
    } else if (ARG("--host")) opt_host = v;
    else if (ARG("--port")) opt_port = atoi(v);
    else if (ARG("--path")) opt_path = v;
    else if (ARG("--conns")) opt_conns = atoi(v);
    else if (ARG("--inflight")) opt_inflight = atoi(v);
    else if (ARG("--size")) opt_size = (size_t)strtoull(v, NULL, 10);
    else if (ARG("--duration")) opt_duration = atof(v);
    else if (ARG("--warmup")) opt_warmup = atof(v);
    else if (ARG("--timeout")) opt_timeout = atof(v);
    else if (ARG("--cycle-timeout")) opt_cycle_timeout = atof(v);
    else if (ARG("--concurrency")) opt_concurrency = atoi(v);
    else if (ARG("--window")) opt_window = atoi(v);
    else if (ARG("--sampled")) opt_sampled = atoi(v);
    else if (ARG("--sub-path")) opt_sub_path = v;
    else if (ARG("--pub-path")) opt_pub_path = v;
    else if (ARG("--sub-port2")) opt_port2 = atoi(v);
    else if (!strcmp(a, "--binary")) opt_binary = 1;
    else if (!strcmp(a, "--text")) opt_binary = 0;
    else if (!strcmp(a, "--raw")) opt_raw = 1;
    else usage();
#undef ARG
  }
  if (opt_port <= 0 || opt_conns <= 0 || opt_inflight <= 0) usage();
  if (opt_raw && (opt_mode == M_CONNRATE || opt_mode == M_HOLD)) die("--raw only applies to throughput and latency");
  if (opt_mode == M_LATENCY) opt_inflight = 1;
  if (opt_mode == M_FANOUT) {
    if (opt_raw) die("--raw does not apply to fanout");
    if (opt_size < SEQ_DIGITS || opt_size > 125) die("fanout: --size must be 16 to 125 (a 7-bit length frame)");
    if (opt_window <= 0 || opt_sampled <= 0) usage();
    if (opt_sampled > opt_conns) opt_sampled = opt_conns;
    opt_inflight = 1;
  }
}

static void raise_fd_limit(size_t want) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur >= want) return;
  struct rlimit nr = {want, want > rl.rlim_max ? want : rl.rlim_max};
  if (setrlimit(RLIMIT_NOFILE, &nr) < 0) {
    nr.rlim_cur = rl.rlim_max; /* not root: take what the hard limit allows */
    nr.rlim_max = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nr);
  }
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);

  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)opt_port);
  if (inet_pton(AF_INET, opt_host, &addr.sin_addr) != 1) die("--host must be an IPv4 address");
  addr2 = addr;
  addr2.sin_port = htons((uint16_t)opt_port2);

  nconns = opt_conns;
  if (opt_mode == M_FANOUT) {
    nsubs = opt_conns;
    nconns = nsubs + 1; /* the publisher */
  }
  raise_fd_limit((size_t)nconns + 64);
  conns = calloc((size_t)nconns, sizeof *conns);
  if (!conns) die("out of memory");
  for (int i = 0; i < nconns; i++) conns[i].fd = -1;
  build_messages();
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1 failed");

  struct epoll_event evs[1024];
  now_ns = mono_ns();
  const uint64_t t0 = now_ns;
  const uint64_t setup_deadline = t0 + (uint64_t)(opt_timeout * 1e9);

  /* --- hold: open N with bounded concurrency, print ready, wait --------- */
  if (opt_mode == M_HOLD) {
    int next = 0;
    while (open_count < nconns) {
      while (next < nconns && active_count - open_count < opt_concurrency) start_conn(&conns[next++]);
      int n = epoll_wait(ep, evs, 1024, 50);
      now_ns = mono_ns();
      for (int i = 0; i < n; i++) {
        struct conn *c = &conns[evs[i].data.u32];
        handle_event(c, evs[i].events);
        if (c->state == S_FREE) { /* this slot failed: retry it, within reason */
          if (c_errors > (uint64_t)nconns / 10 + 10) die(last_error);
          start_conn(c);
        }
      }
      if (got_signal) die("interrupted during setup");
      if (now_ns > setup_deadline) {
        char msg[128];
        snprintf(msg, sizeof msg, "setup timeout: %d of %d open", open_count, nconns);
        die(msg);
      }
    }
    double setup_s = secs(now_ns - t0);
    printf("ready\n");
    fflush(stdout);
    struct epoll_event sev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    int watch_stdin = epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev) == 0;
    const uint64_t hold_deadline = now_ns + (uint64_t)(opt_timeout * 1e9);
    int closed_by_server = 0, done = 0;
    while (!done && !got_signal && now_ns < hold_deadline) {
      int n = epoll_wait(ep, evs, 1024, 200);
      now_ns = mono_ns();
      for (int i = 0; i < n; i++) {
        if (evs[i].data.u32 == UINT32_MAX) {
          char b[256];
          ssize_t r = read(0, b, sizeof b);
          if (r <= 0) done = 1;
          continue;
        }
        struct conn *c = &conns[evs[i].data.u32];
        int was = c->state;
        handle_event(c, evs[i].events);
        if (was != S_FREE && c->state == S_FREE) closed_by_server++;
      }
      (void)watch_stdin;
    }
    printf("{\"ok\":true,\"mode\":\"hold\",\"conns\":%d,\"open\":%d,\"setup_s\":%.3f,"
           "\"closed_by_server\":%d,\"errors\":%llu,\"last_error\":\"%s\"}\n",
           nconns, open_count, setup_s, closed_by_server, (unsigned long long)c_errors, last_error);
    return 0;
  }

  /* --- connrate: C slots, each cycling open/upgrade/close --------------- */
  if (opt_mode == M_CONNRATE) {
    for (int i = 0; i < nconns; i++) start_conn(&conns[i]);
    const uint64_t warm_end = now_ns + (uint64_t)(opt_warmup * 1e9);
    const uint64_t end = warm_end + (uint64_t)(opt_duration * 1e9);
    const uint64_t cyc = (uint64_t)(opt_cycle_timeout * 1e9);
    uint64_t t_meas = 0, last_scan = now_ns;
    double cpu0 = 0;
    while (now_ns < end && !got_signal) {
      int n = epoll_wait(ep, evs, 1024, 10);
      now_ns = mono_ns();
      if (!measuring && now_ns >= warm_end) {
        measuring = 1;
        t_meas = now_ns;
        cpu0 = cpu_s();
        printf("measure\n"); /* lets the harness sample the server CPU time */
        fflush(stdout);
        c_cycles = c_errors = c_timeouts = 0;
      }
      for (int i = 0; i < n; i++) handle_event(&conns[evs[i].data.u32], evs[i].events);
      if (now_ns - last_scan > 50000000ull) {
        last_scan = now_ns;
        for (int i = 0; i < nconns; i++) {
          struct conn *c = &conns[i];
          if (c->state == S_FREE) { start_conn(c); continue; } /* socket() failed earlier */
          if (now_ns - c->t_start > cyc) {
            c_timeouts++;
            drop_conn(c, 1, "cycle timeout");
            start_conn(c);
          }
        }
      }
    }
    double el = measuring ? secs(now_ns - t_meas) : 0;
    double cpu_pct = el > 0 ? 100.0 * (cpu_s() - cpu0) / el : 0;
    printf("{\"ok\":true,\"mode\":\"connrate\",\"conns\":%d,\"seconds\":%.3f,\"cycles\":%llu,"
           "\"cycles_per_s\":%.1f,\"cpu_pct\":%.1f,\"errors\":%llu,\"timeouts\":%llu,\"last_error\":\"%s\"}\n",
           nconns, el, (unsigned long long)c_cycles, el > 0 ? (double)c_cycles / el : 0.0, cpu_pct,
           (unsigned long long)c_errors, (unsigned long long)c_timeouts, last_error);
    return 0;
  }

  /* --- fanout: S subscribers, then one publisher; a window of W messages -- */
  if (opt_mode == M_FANOUT) {
    /* Open the subscribers, at most --concurrency handshakes at a time (a
     * burst of 1,000 SYNs would overflow a default listen backlog). */
    int next = 0;
    while (open_count < nsubs) {
      while (next < nsubs && active_count - open_count < opt_concurrency) start_conn(&conns[next++]);
      int n = epoll_wait(ep, evs, 1024, 50);
      now_ns = mono_ns();
      for (int i = 0; i < n; i++) handle_event(&conns[evs[i].data.u32], evs[i].events);
      if (c_errors) die(last_error);
      if (got_signal) die("interrupted during setup");
      if (now_ns > setup_deadline) {
        char msg[128];
        snprintf(msg, sizeof msg, "setup timeout: %d of %d subscribers open", open_count, nsubs);
        die(msg);
      }
    }
    /* Sampled subscribers, spread evenly over the opening order; a message
     * is done when the slowest of them has received it. */
    int *sampled = calloc((size_t)opt_sampled, sizeof *sampled);
    if (!sampled) die("out of memory");
    for (int i = 0; i < opt_sampled; i++) {
      sampled[i] = opt_sampled == 1 ? 0 : (int)((int64_t)i * (nsubs - 1) / (opt_sampled - 1));
      conns[sampled[i]].sampled = 1;
    }
    pub = &conns[nsubs];
    start_conn(pub);
    while (open_count < nconns) {
      int n = epoll_wait(ep, evs, 1024, 50);
      now_ns = mono_ns();
      for (int i = 0; i < n; i++) handle_event(&conns[evs[i].data.u32], evs[i].events);
      if (c_errors) die(last_error);
      if (got_signal) die("interrupted during setup");
      if (now_ns > setup_deadline) die("setup timeout (publisher)");
    }
    /* A server may register a subscription only after its 101 is out:
     * give it a moment so the first messages reach everyone. */
    {
      const uint64_t quiet_end = now_ns + 100000000ull;
      while (now_ns < quiet_end && !got_signal) {
        int n = epoll_wait(ep, evs, 1024, 10);
        now_ns = mono_ns();
        for (int i = 0; i < n; i++) handle_event(&conns[evs[i].data.u32], evs[i].events);
      }
    }
    double setup_s = secs(now_ns - t0);
    pubq = malloc(frame_len * (size_t)opt_window);
    pub_times = calloc((size_t)opt_window, sizeof *pub_times);
    if (!pubq || !pub_times) die("out of memory");

    const uint64_t warm_end = now_ns + (uint64_t)(opt_warmup * 1e9);
    const uint64_t end = warm_end + (uint64_t)(opt_duration * 1e9);
    uint64_t t_meas = 0, done = 0, stalls = 0;
    double cpu0 = 0;
    static const char hex[] = "0123456789abcdef";
    while (now_ns < end && !got_signal) {
      /* done = what the slowest sampled subscriber has received */
      done = UINT64_MAX;
      for (int i = 0; i < opt_sampled; i++) {
        const struct conn *c = &conns[sampled[i]];
        if (c->state == S_OPEN && c->seq_next < done) done = c->seq_next;
      }
      if (done == UINT64_MAX) die("every sampled subscriber was closed");
      /* top the window up; pubq holds at most W frames because every queued
       * frame is also outstanding */
      if (pub->state == S_OPEN && pub_seq - done < (uint64_t)opt_window) {
        while (pub_seq - done < (uint64_t)opt_window) {
          uint8_t *f = pubq + pubq_len;
          memcpy(f, msgbuf, frame_len);
          size_t hl = frame_len - opt_size;
          for (int d = 0; d < SEQ_DIGITS; d++) {
            uint8_t ch = (uint8_t)hex[(pub_seq >> (4 * (SEQ_DIGITS - 1 - d))) & 15];
            f[hl + (size_t)d] = ch ^ mask_key[d & 3];
          }
          pubq_len += frame_len;
          pub_times[pub_seq % (uint64_t)opt_window] = now_ns;
          pub_seq++;
          if (measuring) c_published++;
        }
        if (!pub->armed_out) flush(pub);
      }
      int n = epoll_wait(ep, evs, 1024, 10);
      now_ns = mono_ns();
      if (n == 0) stalls++;
      if (!measuring && now_ns >= warm_end) {
        measuring = 1;
        t_meas = now_ns;
        cpu0 = cpu_s();
        printf("measure\n");
        fflush(stdout);
        c_msgs = c_payload = c_published = c_gaps = 0;
        nsamples = 0;
        stalls = 0;
      }
      for (int i = 0; i < n; i++) handle_event(&conns[evs[i].data.u32], evs[i].events);
      if (pub->state != S_OPEN) die(last_error[0] ? last_error : "publisher closed");
    }
    double el = measuring ? secs(now_ns - t_meas) : 0;
    double cpu_pct = el > 0 ? 100.0 * (cpu_s() - cpu0) / el : 0;
    double med = 0, p99 = 0;
    if (nsamples) {
      qsort(samples, nsamples, sizeof *samples, cmp_u64);
      med = (double)samples[nsamples / 2] / 1e3;
      size_t i99 = (size_t)((double)nsamples * 0.99);
      if (i99 >= nsamples) i99 = nsamples - 1;
      p99 = (double)samples[i99] / 1e3;
    }
    printf("{\"ok\":true,\"mode\":\"fanout\",\"subscribers\":%d,\"window\":%d,\"sampled\":%d,\"size\":%zu,"
           "\"opcode\":\"%s\",\"setup_s\":%.3f,\"seconds\":%.3f,\"deliveries\":%llu,\"deliveries_per_s\":%.1f,"
           "\"published\":%llu,\"published_per_s\":%.1f,\"deliveries_per_message\":%.1f,"
           "\"outstanding_at_end\":%llu,\"idle_waits\":%llu,\"cpu_pct\":%.1f,"
           "\"errors\":%llu,\"bad_len\":%llu,\"gaps\":%llu,\"unexpected_frames\":%llu,\"open_at_end\":%d,"
           "\"samples\":%zu,\"median_us\":%.1f,\"p99_us\":%.1f,\"last_error\":\"%s\"}\n",
           nsubs, opt_window, opt_sampled, opt_size, opt_binary ? "binary" : "text", setup_s, el,
           (unsigned long long)c_msgs, el > 0 ? (double)c_msgs / el : 0.0, (unsigned long long)c_published,
           el > 0 ? (double)c_published / el : 0.0, c_published ? (double)c_msgs / (double)c_published : 0.0,
           (unsigned long long)(pub_seq - done), (unsigned long long)stalls, cpu_pct, (unsigned long long)c_errors,
           (unsigned long long)c_bad_len, (unsigned long long)c_gaps, (unsigned long long)c_unexpected, open_count,
           nsamples, med, p99, last_error);
    return 0;
  }

  /* --- throughput / latency: open all, then K frames in flight each ----- */
  for (int i = 0; i < nconns; i++) start_conn(&conns[i]);
  while (open_count < nconns) {
    int n = epoll_wait(ep, evs, 1024, 50);
    now_ns = mono_ns();
    for (int i = 0; i < n; i++) handle_event(&conns[evs[i].data.u32], evs[i].events);
    if (c_errors) die(last_error);
    if (got_signal) die("interrupted during setup");
    if (now_ns > setup_deadline) die("setup timeout");
  }
  double setup_s = secs(now_ns - t0);
  now_ns = mono_ns();
  for (int i = 0; i < nconns; i++) {
    for (int k = 0; k < opt_inflight; k++) queue_frame(&conns[i]);
    flush(&conns[i]);
  }
  const uint64_t warm_end = now_ns + (uint64_t)(opt_warmup * 1e9);
  const uint64_t end = warm_end + (uint64_t)(opt_duration * 1e9);
  uint64_t t_meas = 0;
  double cpu0 = 0;
  while (now_ns < end && !got_signal) {
    int n = epoll_wait(ep, evs, 1024, 10);
    now_ns = mono_ns();
    if (!measuring && now_ns >= warm_end) {
      measuring = 1;
      t_meas = now_ns;
      cpu0 = cpu_s();
      printf("measure\n");
      fflush(stdout);
      c_msgs = c_payload = 0;
      nsamples = 0;
    }
    for (int i = 0; i < n; i++) handle_event(&conns[evs[i].data.u32], evs[i].events);
    if (active_count == 0) break;
  }
  double el = measuring ? secs(now_ns - t_meas) : 0;
  double mps = el > 0 ? (double)c_msgs / el : 0;
  double mbps = el > 0 ? (double)c_payload / el / 1e6 : 0;
  double cpu_pct = el > 0 ? 100.0 * (cpu_s() - cpu0) / el : 0;
  const char *mname = opt_mode == M_LATENCY ? "latency" : "throughput";
  printf("{\"ok\":true,\"mode\":\"%s\",\"raw\":%s,\"conns\":%d,\"inflight\":%d,\"size\":%zu,"
         "\"opcode\":\"%s\",\"setup_s\":%.3f,\"seconds\":%.3f,\"messages\":%llu,\"msgs_per_s\":%.1f,"
         "\"mb_per_s\":%.2f,\"cpu_pct\":%.1f",
         mname, opt_raw ? "true" : "false", nconns, opt_inflight, opt_size, opt_binary ? "binary" : "text",
         setup_s, el, (unsigned long long)c_msgs, mps, mbps, cpu_pct);
  if (opt_mode == M_LATENCY) {
    double med = 0, p99 = 0, mean = 0;
    if (nsamples) {
      qsort(samples, nsamples, sizeof *samples, cmp_u64);
      med = (double)samples[nsamples / 2] / 1e3;
      size_t i99 = (size_t)((double)nsamples * 0.99);
      if (i99 >= nsamples) i99 = nsamples - 1;
      p99 = (double)samples[i99] / 1e3;
      long double sum = 0;
      for (size_t i = 0; i < nsamples; i++) sum += samples[i];
      mean = (double)(sum / nsamples) / 1e3;
    }
    printf(",\"samples\":%zu,\"median_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f", nsamples, med, p99, mean);
  }
  printf(",\"errors\":%llu,\"bad_len\":%llu,\"unexpected_frames\":%llu,\"open_at_end\":%d,\"last_error\":\"%s\"}\n",
         (unsigned long long)c_errors, (unsigned long long)c_bad_len, (unsigned long long)c_unexpected,
         open_count, last_error);
  return 0;
}
