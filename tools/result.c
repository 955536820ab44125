/* result.c: loadgen's results, added up and printed (see result.h). */
#include "result.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char *const step_names[STEPS] = { "socket", "bind", "setsockopt", "connect",
                                               "send", "echo", "check" };

void result_failure(struct result *r, enum step step, int err, int64_t when)
{
    int reason = err == CLOSED_BY_SERVER ? 0 : err > 0 && err < REASONS - 1 ? err : REASONS - 1;

    if (r->first_failure_ns == 0) {
        r->first_failure_ns = when;
        r->first_step = step;
        r->first_reason = reason;
    }
    r->failures[step][reason]++;
}

void result_add(struct result *into, const struct result *from)
{
    into->opened += from->opened;
    into->failed += from->failed;
    into->verified += from->verified;
    into->messages += from->messages;
    into->all_messages += from->all_messages;
    into->bytes += from->bytes;
    into->byte_errors += from->byte_errors;
    into->late += from->late;
    into->cpu_us += from->cpu_us;
    if (from->max_lag_ns > into->max_lag_ns)
        into->max_lag_ns = from->max_lag_ns;
    if (from->first_failure_ns != 0 &&
        (into->first_failure_ns == 0 || from->first_failure_ns < into->first_failure_ns)) {
        into->first_failure_ns = from->first_failure_ns;
        into->first_step = from->first_step;
        into->first_reason = from->first_reason;
    }
    for (int s = 0; s < STEPS; s++)
        for (int e = 0; e < REASONS; e++)
            into->failures[s][e] += from->failures[s][e];
    histogram_merge(&into->latency, &from->latency);
}

const char *step_name(int step)
{
    return step_names[step];
}

const char *reason_text(int reason)
{
    if (reason == CLOSED_BY_SERVER)
        return "closed by the server";
    return reason == REASONS - 1 ? "an unknown error" : strerror(reason);
}

double late_pct(const struct result *r)
{
    return r->messages > 0 ? 100.0 * (double)r->late / (double)r->messages : 0;
}

static double percentile_us(const struct result *r, uint64_t num, uint64_t den)
{
    return (double)histogram_percentile(&r->latency, num, den) / 1000.0;
}

static double cpu_us_per_message(const struct result *r)
{
    return r->all_messages > 0 ? (double)r->cpu_us / (double)r->all_messages : 0;
}

/* The text of a JSON string: quotes, backslashes and control characters
 * escaped (RFC 8259, section 7). strerror()'s texts have none in the C
 * locale, which loadgen never leaves, but the JSON must not depend on it. */
static void print_json_text(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
}

/* "connect: Connection timed out", as the text of a JSON string. */
static void print_json_failure(int step, int reason)
{
    printf("%s: ", step_names[step]);
    print_json_text(reason_text(reason));
}

void print_json(const struct result *r, const struct run *run)
{
    static const char *const modes[] = { "echo", "hold", "churn" };
    double seconds = run->seconds;
    bool first = true;

    printf("{\"mode\":\"%s\",\"connections\":%ld,\"idle\":%ld,\"rate\":%.15g,\"workers\":%d,"
           "\"opened\":%llu,\"failed\":%llu,\"broken\":%llu,\"verified\":%llu,\"first_failure\":\"",
           modes[run->mode], run->connections, run->idle, run->rate, run->workers,
           (unsigned long long)r->opened, (unsigned long long)r->failed,
           (unsigned long long)(r->opened - r->verified), (unsigned long long)r->verified);
    if (r->first_failure_ns != 0)
        print_json_failure(r->first_step, r->first_reason);
    printf("\",\"messages\":%llu,\"all_messages\":%llu,\"byte_errors\":%llu,\"seconds\":%.3f,"
           "\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
           "\"p999_us\":%.1f,\"max_us\":%.1f,\"late_pct\":%.2f,\"max_lag_us\":%.1f,"
           "\"client_cpu_us\":%llu,\"client_cpu_us_per_msg\":%.3f,\"failures\":{",
           (unsigned long long)r->messages, (unsigned long long)r->all_messages,
           (unsigned long long)r->byte_errors, seconds, (double)r->messages / seconds,
           (double)r->bytes / seconds / 1e6, percentile_us(r, 1, 2), percentile_us(r, 9, 10),
           percentile_us(r, 99, 100), percentile_us(r, 999, 1000),
           (double)r->latency.max / 1000.0, late_pct(r), (double)r->max_lag_ns / 1000.0,
           (unsigned long long)r->cpu_us, cpu_us_per_message(r));
    for (int s = 0; s < STEPS; s++)
        for (int e = 0; e < REASONS; e++) {
            if (r->failures[s][e] == 0)
                continue;
            printf("%s\"", first ? "" : ",");
            print_json_failure(s, e);
            printf("\":%llu", (unsigned long long)r->failures[s][e]);
            first = false;
        }
    printf("}}\n");
}

void print_summary(const struct result *r, const struct run *run)
{
    const char *what = run->mode == CHURN ? "cycles" : "messages";
    double seconds = run->seconds;
    bool first = true;

    printf("connections: %llu opened, %llu failed to connect, %llu %s\n",
           (unsigned long long)r->opened, (unsigned long long)r->failed,
           (unsigned long long)r->verified,
           run->mode == CHURN ? "echoed and closed" : "echoed at the end");
    if (run->mode != HOLD) {
        printf("%s: %llu in %.1f s after %.1f s of warm-up (%llu in all): %.0f %s/s, %.2f MB/s\n",
               what, (unsigned long long)r->messages, seconds, run->warmup,
               (unsigned long long)r->all_messages, (double)r->messages / seconds,
               run->mode == CHURN ? "cycles" : "msgs", (double)r->bytes / seconds / 1e6);
        printf("latency: p50 %.0f us, p90 %.0f us, p99 %.0f us, p99.9 %.0f us, max %.0f us\n",
               percentile_us(r, 1, 2), percentile_us(r, 9, 10), percentile_us(r, 99, 100),
               percentile_us(r, 999, 1000), (double)r->latency.max / 1000.0);
        if (run->rate > 0)
            printf("schedule: %.15g msgs/s; %.1f%% of messages started over 1 ms late, "
                   "at worst %.1f ms\n", run->rate, late_pct(r), (double)r->max_lag_ns / 1e6);
        printf("client CPU: %.3f s, %.2f us per %s\n", (double)r->cpu_us / 1e6,
               cpu_us_per_message(r), run->mode == CHURN ? "cycle" : "message");
    }
    if (r->first_failure_ns != 0) {
        printf("first failure: %s: %s\nfailures: ", step_names[r->first_step],
               reason_text(r->first_reason));
        for (int s = 0; s < STEPS; s++)
            for (int e = 0; e < REASONS; e++) {
                if (r->failures[s][e] == 0)
                    continue;
                printf("%s%llu %s: %s", first ? "" : ", ", (unsigned long long)r->failures[s][e],
                       step_names[s], reason_text(e));
                first = false;
            }
        printf("\n");
    }
    printf("byte errors: %llu\n", (unsigned long long)r->byte_errors);
}
