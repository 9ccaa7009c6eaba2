/* The machine's floor for bench/paced.sh: what the kernel alone charges a process that wakes
 * once per 1 KiB message, as `stdio` must at the real agent's pace. A sender writes 1 KiB over
 * TCP loopback every 1 ms; the receiver wakes in epoll_wait, recv()s, writes each message to a
 * socketpair that a reader drains (ssh's ProxyCommand pipe), and sends one 306-byte
 * acknowledge per message back over TCP in batches of four (stdio's ack holding). It does no
 * parsing, no digest and no framing, so (stdio's µs per message) − (this) is our own cost.
 *   cc -O2 -o floor bench/paced-floor.c && ./floor 10240    → "msgs N cpu S us_per_msg U"   */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void sender(struct sockaddr_in *a, int n) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (connect(s, (void *)a, sizeof *a) != 0) _exit(1);
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(s, F_SETFL, O_NONBLOCK);
  char msg[1024] = {0}, sink[65536];
  struct timespec pause = {0, 1000000};
  for (int i = 0; i < n; i++) {
    if (write(s, msg, sizeof msg) < 0) _exit(1);
    nanosleep(&pause, 0);
    while (read(s, sink, sizeof sink) > 0) {}
  }
  shutdown(s, SHUT_WR);
  _exit(0);
}

static void reader(int fd) {
  char buf[65536];
  while (read(fd, buf, sizeof buf) > 0) {}
  _exit(0);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10240, one = 1, pair[2];
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (bind(l, (void *)&a, sizeof a) || listen(l, 1) || getsockname(l, (void *)&a, &alen)) return 1;
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair)) return 1;
  if (fork() == 0) { close(pair[0]); close(pair[1]); sender(&a, n); }
  if (fork() == 0) { close(pair[0]); reader(pair[1]); }
  close(pair[1]);
  int s = accept(l, 0, 0);
  close(l);
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(s, F_SETFL, O_NONBLOCK);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
  epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
  char buf[65536], acks[4 * 306];
  memset(acks, 'a', sizeof acks);
  long msgs = 0, held = 0;
  for (;;) {
    struct epoll_event e;
    if (epoll_wait(ep, &e, 1, -1) <= 0) continue;
    ssize_t k = recv(s, buf, sizeof buf, 0);
    if (k == 0) break;
    if (k < 0) continue;
    for (ssize_t off = 0; off < k; off += 1024, msgs++, held++)
      if (write(pair[0], buf + off, k - off < 1024 ? k - off : 1024) < 0) return 1;
    if (held >= 4) { send(s, acks, sizeof acks, 0); held = 0; }
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  printf("msgs %ld cpu %.3f us_per_msg %.1f\n", msgs, cpu, cpu * 1e6 / (msgs ? msgs : 1));
  return 0;
}
