/* GET requests per second against one chaos-agent (bench/bench_fleet.sh).
 *   bench_agent_get URL TOKEN_FILE CA_FILE|"" SECONDS CONCURRENCY [fresh]
 * CONCURRENCY libcurl easy handles in one multi, each on its own keep-alive
 * connection, each sending the next request as soon as its reply is in, for
 * SECONDS (after a 0.5 s warm-up that makes the connections and handshakes).
 * Every reply must be 200 with a body; prints requests/s and the median and
 * p99 latency. With "fresh", every request opens a new connection (and with
 * https makes a new TLS handshake): what a controller that does not keep
 * its connections pays. One thread: the client costs a core's fraction too, which on
 * a small machine it shares with the agent. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slot {
    CURL *h;
    double t0;
    size_t bytes;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    (void)p;
    ((struct slot *)arg)->bytes += sz * n;
    return sz * n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 6 && !(argc == 7 && strcmp(argv[6], "fresh") == 0)) {
        fprintf(stderr, "usage: %s URL TOKEN_FILE CA_FILE|\"\" SECONDS CONCURRENCY [fresh]\n",
                argv[0]);
        return 2;
    }
    const char *url = argv[1], *ca = argv[3];
    double seconds = atof(argv[4]);
    int conc = atoi(argv[5]);
    long fresh = argc == 7;
    if (seconds <= 0 || conc < 1 || conc > 256) {
        fprintf(stderr, "bench_agent_get: SECONDS > 0, CONCURRENCY 1-256\n");
        return 2;
    }
    char token[512] = "";
    FILE *tf = fopen(argv[2], "r");
    if (!tf || !fgets(token, sizeof token, tf)) {
        fprintf(stderr, "bench_agent_get: cannot read %s\n", argv[2]);
        return 2;
    }
    fclose(tf);
    token[strcspn(token, "\r\n")] = 0;
    char auth[600];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    struct curl_slist *hdr = curl_slist_append(NULL, auth);
    struct slot *s = calloc((size_t)conc, sizeof *s);
    size_t cap = 1 << 20, n_lat = 0;
    double *lat = malloc(cap * sizeof *lat);
    if (!m || !hdr || !s || !lat)
        return 1;
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conc);
    for (int i = 0; i < conc; i++) {
        CURL *h = s[i].h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &s[i]);
        curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)&s[i]);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, fresh);
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, fresh);
        if (*ca)
            curl_easy_setopt(h, CURLOPT_CAINFO, ca);
        s[i].t0 = now_s();
        curl_multi_add_handle(m, h);
    }
    double start = now_s(), t_measure = start + 0.5, t_end = t_measure + seconds;
    long ok = 0, bad = 0, bytes = 0;
    int running = conc;
    while (running) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *h = msg->easy_handle;
            struct slot *sl;
            curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&sl);
            long status = 0;
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
            double t = now_s();
            if (t >= t_measure && t < t_end) {
                if (msg->data.result == CURLE_OK && status == 200 && sl->bytes > 0) {
                    ok++;
                    bytes += (long)sl->bytes;
                    if (n_lat < cap)
                        lat[n_lat++] = t - sl->t0;
                } else {
                    bad++;
                    if (bad <= 3)
                        fprintf(stderr, "bench_agent_get: %s, status %ld\n",
                                curl_easy_strerror(msg->data.result), status);
                }
            }
            curl_multi_remove_handle(m, h);
            if (t < t_end) { /* the same handle again: its connection is reused */
                sl->bytes = 0;
                sl->t0 = now_s();
                curl_multi_add_handle(m, h);
                running++;
            }
        }
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    qsort(lat, n_lat, sizeof *lat, cmp_double);
    double med = n_lat ? lat[n_lat / 2] : 0, p99 = n_lat ? lat[n_lat * 99 / 100] : 0;
    printf("GET %s: %d in flight%s, %.0f req/s over %.1f s (%ld ok, %ld failed, %.0f bytes a reply), "
           "latency median %.3f ms p99 %.3f ms\n",
           url, conc, fresh ? ", a new connection each" : "", (double)ok / seconds, seconds, ok, bad, ok ? (double)bytes / (double)ok : 0.0,
           med * 1e3, p99 * 1e3);
    for (int i = 0; i < conc; i++)
        curl_easy_cleanup(s[i].h);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdr);
    free(s);
    free(lat);
    curl_global_cleanup();
    return bad ? 1 : 0;
}
