/* agent/net_ns.c on the host, without root: pinning a namespace file, and
 * finding a namespace by identity (this process's own is always findable;
 * an identity nobody holds is not). The cases that need namespaces of their
 * own run in the VM (tests/vm/net_vm_recovery.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include "net_ns.h"

Test(net_ns, pin_reads_the_identity_and_refuses_other_files)
{
    struct stat st;
    cr_assert_eq(stat("/proc/self/ns/net", &st), 0);
    struct nltc_ns_id id = {0};
    struct chaos_err err = {0};
    int fd = net_ns_pin("/proc/self/ns/net", &id, &err);
    cr_assert_geq(fd, 0, "%s", err.msg);
    cr_expect_eq(id.dev, (uint64_t)st.st_dev);
    cr_expect_eq(id.ino, (uint64_t)st.st_ino);
    char path[32];
    net_ns_fd_path(fd, path, sizeof path);
    struct stat pst;
    cr_assert_eq(stat(path, &pst), 0, "%s", path);
    cr_expect_eq(pst.st_ino, st.st_ino, "the fd path names the same namespace");
    close(fd);

    cr_expect_eq(net_ns_pin("/proc/self/ns/uts", &id, &err), -EINVAL);
    cr_expect(strstr(err.msg, "not a network namespace"), "%s", err.msg);
    cr_expect_eq(net_ns_pin("/nonexistent/chaos-t-ns", &id, &err), -ENOENT);
    cr_expect(strstr(err.msg, "no such namespace"), "%s", err.msg);
}

Test(net_ns, find_by_identity)
{
    struct stat st;
    cr_assert_eq(stat("/proc/self/ns/net", &st), 0);
    struct nltc_ns_id id = {(uint64_t)st.st_dev, (uint64_t)st.st_ino};
    char path[256], unseen[192];
    struct chaos_err err = {0};
    cr_assert_eq(net_ns_find(&id, path, sizeof path, unseen, sizeof unseen, &err), 1, "%s",
                 err.msg);
    struct stat fst;
    cr_assert_eq(stat(path, &fst), 0, "%s", path);
    cr_expect(fst.st_dev == st.st_dev && fst.st_ino == st.st_ino, "%s is another namespace", path);

    /* Inode 1 of the nsfs device is never a namespace anybody holds. */
    struct nltc_ns_id nobody = {(uint64_t)st.st_dev, 1};
    cr_expect_eq(net_ns_find(&nobody, path, sizeof path, unseen, sizeof unseen, &err), 0, "%s",
                 err.msg);
}
