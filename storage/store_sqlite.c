/* store_sqlite.c - the embedded engine. One table per collection holding
 * (tenant, id, doc JSON); fields are reached with json_extract and indexed
 * with expression indexes that use the very same expression text, so the
 * planner can match them. A small connection pool lets readers run in
 * parallel under WAL; writes run on one connection of their own under a
 * process-wide mutex, so writers wait on a condition instead of in SQLite's
 * sleeping busy handler, and the writer's page cache stays warm (a
 * connection that sees another's commit re-reads its pages).
 *
 * Writes are group-committed: concurrent write calls queue, the caller at the
 * head of the queue runs up to SQ_GROUP_MAX of them in one transaction (each
 * in a savepoint of its own, so one failing write - a duplicate, say - is
 * undone alone and gets its own error) and commits once, so the group shares
 * one WAL fsync. Every caller returns only after that COMMIT returned. A
 * batch insert is one write of the group: an INSERT per document (a refused
 * one undoes itself), then the changes of those written as one block of the
 * log (sq_insert_locked).
 *
 * The change log (store.h) is the table "changes" (tenant, seq, time, op,
 * coll, id, doc). Each write path records its changes with sq_log inside the
 * write's own savepoint, so a change is logged exactly when its write
 * commits, and a write undone alone takes its entry with it. seq comes from
 * the per-tenant counter "changes" in the same savepoint: SQLite runs one
 * write transaction at a time on the file (across processes too: replicas on
 * one file take the same lock), so seq order is commit order and has no
 * holes. Pruning records the highest pruned seq per tenant ("changes#pruned")
 * so a reader can tell a gap from an empty log. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "store_int.h"

#define SQ_POOL_MAX 8
#define SQ_CACHE 32
/* Other processes (a second service replica, a migration) may hold the write
 * lock; beyond this the store counts as unavailable. */
#define SQ_BUSY_MS 10000
/* Without statistics the planner takes `tenant = ?` for selective and
 * prefers scanning a tenant's whole primary key range over a secondary
 * expression index (a count over 1M events: 1.5 s instead of 3 ms). ANALYZE
 * at open covers stores loaded or grown while no service ran; PRAGMA
 * optimize (both bounded by analysis_limit) refreshes them as they grow. */
#define SQ_OPTIMIZE_EVERY 1000
/* Writes per group transaction: bounds how long the last of a group waits for
 * the others' statements (an fsync costs far more than 64 small inserts). */
#define SQ_GROUP_MAX 64
/* WAL pages after which the checkpointer copies the log into the database
 * file (SQLite's own autocheckpoint default). */
#define SQ_CHECKPOINT_PAGES 1000
/* Under a steady write load the log does not restart after a pass (the
 * writer's next transaction began before the pass ended), so it stays past
 * the threshold: the next pass waits until the log has grown by this many
 * frames, not for the next commit. A pass per commit synced the database
 * file and the log again for every group (as many fsyncs as the commits
 * themselves) and rewrote the same hot pages (index tails, the log's own)
 * each time. */
#define SQ_CHECKPOINT_STEP 500
/* Frames left uncopied (committed after a pass, or a pass that fell short)
 * are copied after this quiet time, so the log of writes that stopped is
 * still copied whole. */
#define SQ_CHECKPOINT_IDLE_MS 100
/* Address space, not memory: pages are mapped as they are read. */
#define SQ_MMAP_SIZE "1073741824"

typedef struct sq_cached {
  char *sql;
  sqlite3_stmt *stmt;
  int busy; /* handed out: must not be evicted until sq_done */
} sq_cached;

typedef struct sq_conn {
  sqlite3 *db;
  sq_cached cache[SQ_CACHE];
  size_t evict;
  unsigned long uses;
  struct sq_conn *next;
} sq_conn;

typedef struct sq_store {
  store base;
  char *path;
  pthread_mutex_t mu; /* guards idle and n_conns */
  pthread_cond_t cv;
  sq_conn *idle;
  size_t n_conns, max_conns;
  pthread_mutex_t write_mu; /* serialises writers; guards writer */
  sq_conn *writer;
  pthread_mutex_t q_mu; /* guards the write queue and every queued sq_wreq's done */
  struct sq_wreq *q_head, *q_tail;
  /* The checkpointer (see sq_checkpointer); ckpt_mu guards the ckpt_
   * fields but started. */
  pthread_t ckpt_thread;
  int ckpt_started, ckpt_due, ckpt_stop;
  int ckpt_short; /* the last pass left frames uncopied */
  int ckpt_log;   /* frames in the log at the last pass */
  int ckpt_pages; /* frames after the last commit past the threshold */
  int ckpt_after; /* frames from which the next pass is due */
  pthread_mutex_t ckpt_mu;
  pthread_cond_t ckpt_cv;
} sq_store;

typedef int (*sq_row_fn)(sqlite3_stmt *stmt, void *ctx, store_err *err);

/* One write call waiting in (or running from) the write queue. It lives on its
 * caller's stack; the caller blocks until `done`, so whoever leads the group
 * may use everything it points to. */
typedef struct sq_wreq sq_wreq;
struct sq_wreq {
  /* What to run inside the group transaction: `run` if set (several
   * statements), else the one statement sql/args as sq_exec runs it. */
  int (*run)(sq_conn *c, sq_wreq *w, store_err *err);
  const char *sql;
  json_t *args;
  sq_row_fn fn;
  void *ctx;
  long long *changes;
  /* The single statement's change to log (see sq_write_logged): */
  const char *tenant, *coll;
  int op;         /* 0: none */
  json_t *log_id; /* insert and replace: the document's id */
  const char *log_doc;
  int rc;
  store_err *err;    /* the caller's, may be NULL */
  int done;          /* guarded by q_mu: committed (or failed) */
  pthread_cond_t cv; /* signalled when done or when it becomes the queue head */
  sq_wreq *next;
};

/* ---- errors ---------------------------------------------------------------- */

static int sq_code(int rc) {
  switch (rc & 0xff) {
  case SQLITE_CONSTRAINT:
    return rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE ? STORE_EDUPLICATE
                                                                                : STORE_EINVAL;
  case SQLITE_BUSY: /* another writer held the lock past the busy timeout */
  case SQLITE_LOCKED:
    return STORE_EBUSY;
  case SQLITE_IOERR:
  case SQLITE_FULL:
  case SQLITE_CANTOPEN:
  case SQLITE_READONLY:
  case SQLITE_PROTOCOL:
    return STORE_EUNAVAILABLE;
  default:
    return STORE_EINTERNAL;
  }
}

static int sq_fail(store_err *err, sqlite3 *db, int rc, const char *what) {
  return store_fail(err, sq_code(rc), "sqlite %s: %s", what,
                    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* ---- connections ----------------------------------------------------------- */

static void sq_conn_close(sq_conn *c) {
  if (c->uses) sqlite3_exec(c->db, "PRAGMA optimize", NULL, NULL, NULL);
  for (size_t i = 0; i < SQ_CACHE; i++) {
    sqlite3_finalize(c->cache[i].stmt);
    free(c->cache[i].sql);
  }
  sqlite3_close_v2(c->db);
  free(c);
}

static int sq_conn_open(sq_store *s, sq_conn **out, store_err *err) {
  sq_conn *c = calloc(1, sizeof *c);
  if (!c) return store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  int rc = sqlite3_open_v2(s->path, &c->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    rc = store_fail(err, sq_code(rc) == STORE_EINTERNAL ? STORE_EUNAVAILABLE : sq_code(rc),
                    "sqlite open %s: %s", s->path, c->db ? sqlite3_errmsg(c->db) : "failed");
    goto cleanup_conn;
  }
  sqlite3_extended_result_codes(c->db, 1);
  sqlite3_busy_timeout(c->db, SQ_BUSY_MS);
  /* FULL makes every commit fsync the WAL: an acknowledged write survives a
   * power cut, not just a crash of this process.
   * mmap_size: reads come straight from the mapped file instead of being
   * copied into each connection's private page cache (up to 2 MiB apiece,
   * nine connections), which saves the copies and keeps that memory
   * file-backed and shared with the OS cache. Writes still go through the
   * WAL with write(2).
   * temp_store=MEMORY: a savepoint keeps a copy of each page its write
   * touches (the sub-journal); in a temporary file that was a pwrite(2) per
   * page, more CPU than the writes themselves (a group's writes each have
   * one). Bounded by the pages one write touches. */
  rc = sqlite3_exec(c->db,
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA analysis_limit=1000;"
                    " PRAGMA mmap_size=" SQ_MMAP_SIZE "; PRAGMA temp_store=MEMORY;",
                    NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    rc = sq_fail(err, c->db, rc, "pragmas");
    goto cleanup_conn;
  }
  *out = c;
  return STORE_OK;
cleanup_conn:
  sq_conn_close(c);
  return rc;
}

static int sq_acquire(sq_store *s, sq_conn **out, store_err *err) {
  pthread_mutex_lock(&s->mu);
  while (!s->idle && s->n_conns >= s->max_conns)
    pthread_cond_wait(&s->cv, &s->mu);
  if (s->idle) {
    *out = s->idle;
    s->idle = s->idle->next;
    pthread_mutex_unlock(&s->mu);
    return STORE_OK;
  }
  s->n_conns++; /* reserve the slot, then open without holding the lock */
  pthread_mutex_unlock(&s->mu);
  int rc = sq_conn_open(s, out, err);
  if (rc) {
    pthread_mutex_lock(&s->mu);
    s->n_conns--;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
  }
  return rc;
}

static void sq_release(sq_store *s, sq_conn *c) {
  if (++c->uses % SQ_OPTIMIZE_EVERY == 0) {
    pthread_mutex_lock(&s->write_mu); /* it may write sqlite_stat1 */
    sqlite3_exec(c->db, "PRAGMA optimize", NULL, NULL, NULL);
    pthread_mutex_unlock(&s->write_mu);
  }
  pthread_mutex_lock(&s->mu);
  c->next = s->idle;
  s->idle = c;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

/* ---- statements ------------------------------------------------------------ */

static int sq_prepare(sq_conn *c, const char *sql, sqlite3_stmt **out, store_err *err) {
  for (size_t i = 0; i < SQ_CACHE; i++) {
    sq_cached *e = &c->cache[i];
    if (e->sql && !e->busy && !strcmp(e->sql, sql)) {
      e->busy = 1;
      *out = e->stmt;
      return STORE_OK;
    }
  }
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
  if (rc != SQLITE_OK) return sq_fail(err, c->db, rc, "prepare");
  for (size_t k = 0; k < SQ_CACHE; k++) {
    sq_cached *e = &c->cache[(c->evict + k) % SQ_CACHE];
    char *copy;
    if (e->busy || !(copy = strdup(sql))) continue;
    sqlite3_finalize(e->stmt);
    free(e->sql);
    e->sql = copy;
    e->stmt = stmt;
    e->busy = 1;
    c->evict = (c->evict + k + 1) % SQ_CACHE;
    break;
  }
  *out = stmt; /* uncached if every slot was busy: sq_done finalizes it */
  return STORE_OK;
}

static void sq_done(sq_conn *c, sqlite3_stmt *stmt) {
  for (size_t i = 0; i < SQ_CACHE; i++) {
    if (c->cache[i].stmt == stmt) {
      sqlite3_reset(stmt);
      sqlite3_clear_bindings(stmt);
      c->cache[i].busy = 0;
      return;
    }
  }
  sqlite3_finalize(stmt);
}

static int sq_bind(sqlite3_stmt *stmt, int i, json_t *v) {
  switch (json_typeof(v)) {
  case JSON_STRING:
    return sqlite3_bind_text(stmt, i, json_string_value(v), (int)json_string_length(v),
                             SQLITE_TRANSIENT);
  case JSON_INTEGER:
    return sqlite3_bind_int64(stmt, i, json_integer_value(v));
  case JSON_REAL:
    return sqlite3_bind_double(stmt, i, json_real_value(v));
  case JSON_TRUE: /* json_extract yields 1 and 0 for booleans */
    return sqlite3_bind_int(stmt, i, 1);
  case JSON_FALSE:
    return sqlite3_bind_int(stmt, i, 0);
  default:
    return sqlite3_bind_null(stmt, i);
  }
}

/* Steps a bound statement to completion, calling fn for each row. */
static int sq_step_all(sq_conn *c, sqlite3_stmt *stmt, sq_row_fn fn, void *ctx, long long *changes,
                       store_err *err) {
  for (;;) {
    int src = sqlite3_step(stmt);
    if (src == SQLITE_DONE) break;
    if (src != SQLITE_ROW) return sq_fail(err, c->db, src, "step");
    int rc = fn ? fn(stmt, ctx, err) : STORE_OK;
    if (rc) return rc;
  }
  if (changes) *changes = sqlite3_changes64(c->db);
  return STORE_OK;
}

/* Runs one statement on c to completion, calling fn for each row. */
static int sq_exec(sq_conn *c, const char *sql, json_t *args, sq_row_fn fn, void *ctx,
                   long long *changes, store_err *err) {
  sqlite3_stmt *stmt = NULL;
  int rc = sq_prepare(c, sql, &stmt, err);
  if (rc) return rc;
  for (size_t i = 0; i < json_array_size(args); i++) {
    int brc = sq_bind(stmt, (int)i + 1, json_array_get(args, i));
    if (brc != SQLITE_OK) {
      rc = sq_fail(err, c->db, brc, "bind");
      goto cleanup_stmt;
    }
  }
  rc = sq_step_all(c, stmt, fn, ctx, changes, err);
cleanup_stmt:
  sq_done(c, stmt);
  return rc;
}

/* A parameter of sq_execv: the hot writes bind their document text where
 * it lies instead of copying it into a JSON array (and SQLite copying it
 * again). */
typedef struct sq_arg {
  enum { SQ_TEXT, SQ_INT, SQ_JSON } kind;
  const char *text; /* SQ_TEXT: outlives the statement; NULL binds NULL */
  long long num;
  json_t *json;
} sq_arg;

static int sq_execv(sq_conn *c, const char *sql, const sq_arg *args, int n, sq_row_fn fn, void *ctx,
                    store_err *err) {
  sqlite3_stmt *stmt = NULL;
  int rc = sq_prepare(c, sql, &stmt, err);
  if (rc) return rc;
  for (int i = 0; i < n; i++) {
    const sq_arg *a = &args[i];
    int brc = a->kind == SQ_INT    ? sqlite3_bind_int64(stmt, i + 1, a->num)
              : a->kind == SQ_JSON ? sq_bind(stmt, i + 1, a->json)
              : a->text            ? sqlite3_bind_text(stmt, i + 1, a->text, -1, SQLITE_STATIC)
                                   : sqlite3_bind_null(stmt, i + 1);
    if (brc != SQLITE_OK) {
      rc = sq_fail(err, c->db, brc, "bind");
      goto cleanup_stmt;
    }
  }
  rc = sq_step_all(c, stmt, fn, ctx, NULL, err);
cleanup_stmt:
  sq_done(c, stmt);
  return rc;
}

/* ---- checkpoints ----------------------------------------------------------- */

/* SQLite's autocheckpoint runs in the COMMIT that crosses the threshold:
 * that caller waits while the log is copied into the database file and
 * synced (about a quarter of a 500-document batch's time, every other
 * batch). The writer's WAL hook wakes a thread of the store's own instead,
 * which runs the same PASSIVE checkpoint on a connection of its own beside
 * the writes (it never blocks them); the next write restarts the log once
 * it was copied whole. */
static int sq_wal_hook(void *arg, sqlite3 *db, const char *name, int pages) {
  sq_store *s = arg;
  if (pages < SQ_CHECKPOINT_PAGES) return SQLITE_OK;
  /* The log restarts only after a checkpoint that copied all of it, and
   * under a steady write load the checkpointer's always falls short of the
   * frames written meanwhile: past this the writer finishes the copy itself,
   * as autocheckpoint would, which bounds the log. */
  if (pages >= SQ_CHECKPOINT_PAGES * 8)
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
  pthread_mutex_lock(&s->ckpt_mu);
  s->ckpt_pages = pages;
  /* Fewer frames than at the last pass: the log restarted since. */
  if (!s->ckpt_due && (pages >= s->ckpt_after || pages < s->ckpt_log)) {
    s->ckpt_due = 1;
    pthread_cond_signal(&s->ckpt_cv);
  }
  pthread_mutex_unlock(&s->ckpt_mu);
  return SQLITE_OK;
}

static void *sq_checkpointer(void *arg) {
  sq_store *s = arg;
  sqlite3 *db = NULL;
  pthread_mutex_lock(&s->ckpt_mu);
  for (;;) {
    int idle = 0;
    while (!s->ckpt_due && !s->ckpt_stop && !idle) {
      if (!s->ckpt_short && s->ckpt_pages <= s->ckpt_log) {
        pthread_cond_wait(&s->ckpt_cv, &s->ckpt_mu);
        continue;
      }
      struct timespec until;
      clock_gettime(CLOCK_MONOTONIC, &until);
      until.tv_nsec += SQ_CHECKPOINT_IDLE_MS * 1000000L;
      until.tv_sec += until.tv_nsec / 1000000000L;
      until.tv_nsec %= 1000000000L;
      idle = pthread_cond_timedwait(&s->ckpt_cv, &s->ckpt_mu, &until) == ETIMEDOUT;
    }
    if (s->ckpt_stop) break;
    s->ckpt_due = 0;
    /* Commits during the pass do not call for another. */
    s->ckpt_after = INT_MAX;
    s->ckpt_log = s->ckpt_pages = 0;
    pthread_mutex_unlock(&s->ckpt_mu);
    /* A connection knows the file is in WAL mode only once it has read it:
     * until then a checkpoint does nothing. */
    if (!db && sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) ==
                   SQLITE_OK) {
      sqlite3_busy_timeout(db, SQ_BUSY_MS);
      sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    }
    /* The next pass is due SQ_CHECKPOINT_STEP frames later, or once the
     * log restarted and crossed the threshold again; frames it left (it met
     * a busy lock or a reader, or commits came during it) are copied after
     * SQ_CHECKPOINT_IDLE_MS too. After another failure (I/O), at the next commit
     * past the threshold; meanwhile the log only grows. */
    int log = -1, copied = -1;
    int rc = db ? sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied)
                : SQLITE_CANTOPEN;
    int short_pass = (rc == SQLITE_OK && copied < log) || rc == SQLITE_BUSY;
    pthread_mutex_lock(&s->ckpt_mu);
    s->ckpt_short = short_pass;
    s->ckpt_log = log > 0 ? log : 0;
    s->ckpt_after = (rc == SQLITE_OK || rc == SQLITE_BUSY) && log > 0 ? log + SQ_CHECKPOINT_STEP
                                                                      : SQ_CHECKPOINT_PAGES;
  }
  pthread_mutex_unlock(&s->ckpt_mu);
  sqlite3_close_v2(db);
  return NULL;
}

/* Takes the write lock and the writer connection. ":memory:" has one
 * connection, the pool's, taken before the lock as readers take it. */
static int sq_write_begin(sq_store *s, sq_conn **out, store_err *err) {
  int rc = STORE_OK;
  if (s->max_conns == 1 && (rc = sq_acquire(s, out, err))) return rc;
  pthread_mutex_lock(&s->write_mu);
  if (s->max_conns == 1) return STORE_OK;
  if (!s->writer) {
    if ((rc = sq_conn_open(s, &s->writer, err))) {
      pthread_mutex_unlock(&s->write_mu);
      return rc;
    }
    /* Replaces the writer's autocheckpoint: see sq_checkpointer. */
    sqlite3_wal_hook(s->writer->db, sq_wal_hook, s);
  }
  *out = s->writer;
  return STORE_OK;
}

/* Gives back what sq_write_begin took; `writes` calls ran on it. */
static void sq_write_end(sq_store *s, sq_conn *c, unsigned long writes) {
  if (s->max_conns == 1) {
    pthread_mutex_unlock(&s->write_mu);
    c->uses += writes - 1; /* sq_release counts one */
    sq_release(s, c);
    return;
  }
  unsigned long before = c->uses;
  c->uses += writes;
  if (before / SQ_OPTIMIZE_EVERY != c->uses / SQ_OPTIMIZE_EVERY)
    sqlite3_exec(c->db, "PRAGMA optimize", NULL, NULL, NULL);
  pthread_mutex_unlock(&s->write_mu);
}

/* ---- group commit ---------------------------------------------------------- */

/* Copies one failure to a write of the group that has no error of its own. */
static void sq_wreq_fail(sq_wreq *w, const store_err *why) {
  w->rc = why->code;
  if (w->err) *w->err = *why;
}

/* Runs one write in a savepoint of the open group transaction: a write that
 * fails is undone alone, the rest of the group is unaffected. */
static void sq_group_one(sq_conn *c, sq_wreq *w) {
  store_err scratch;
  if ((w->rc = sq_exec(c, "SAVEPOINT w", NULL, NULL, NULL, NULL, w->err))) return;
  w->rc = w->run ? w->run(c, w, w->err)
                 : sq_exec(c, w->sql, w->args, w->fn, w->ctx, w->changes, w->err);
  /* After errors that end the whole transaction (I/O, disk full) there is no
   * savepoint left: sq_group_run sees that with sqlite3_get_autocommit. */
  if (w->rc) sq_exec(c, "ROLLBACK TO w", NULL, NULL, NULL, NULL, &scratch);
  sq_exec(c, "RELEASE w", NULL, NULL, NULL, NULL, &scratch);
}

static int sq_group_plain(sq_wreq **batch, size_t n);
static int sq_group_inserts(sq_conn *c, sq_wreq **batch, size_t n, store_err *why);

/* One group: BEGIN IMMEDIATE, each write in its savepoint, one COMMIT (one
 * fsync under synchronous=FULL). Sets every write's rc; a write that
 * succeeded takes the group's error if the group does not commit. A group
 * of single-document inserts of one tenant (concurrent creates) runs
 * without savepoints (sq_group_inserts). */
static void sq_group_run(sq_store *s, sq_wreq **batch, size_t n) {
  store_err why = {0};
  sq_conn *c;
  size_t ran = 0;
  if (sq_write_begin(s, &c, &why)) goto fail_unrun;
  if (sq_exec(c, "BEGIN IMMEDIATE", NULL, NULL, NULL, NULL, &why)) goto cleanup_writer;
  if (n == 1) {
    /* Alone in its group: no savepoint (two statements) is needed to undo
     * it alone; a failed write is rolled back with its transaction. */
    sq_wreq *w = batch[0];
    w->rc = w->run ? w->run(c, w, w->err)
                   : sq_exec(c, w->sql, w->args, w->fn, w->ctx, w->changes, w->err);
    ran = 1;
    if (w->rc) {
      if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
      goto cleanup_writer;
    }
  } else if (sq_group_plain(batch, n)) {
    if (!sq_group_inserts(c, batch, n, &why)) {
      ran = n;
      goto commit;
    }
    if (sqlite3_get_autocommit(c->db)) { /* SQLite rolled the group back */
      ran = n;
      goto fail_ran;
    }
    /* A statement of the log failed and left the transaction open: undo the
     * group and run it again the general way, each write in its savepoint,
     * so that a write fails alone as in any group. */
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    if (sq_exec(c, "BEGIN IMMEDIATE", NULL, NULL, NULL, NULL, &why)) goto cleanup_writer;
  }
  for (; ran < n; ran++) {
    sq_group_one(c, batch[ran]);
    if (batch[ran]->rc && sqlite3_get_autocommit(c->db)) {
      /* SQLite rolled the transaction back: the writes before this one are
       * gone too. This write keeps its own error. */
      why =
          batch[ran]->err ? *batch[ran]->err : (store_err){batch[ran]->rc, "sqlite: write failed"};
      ran++;
      goto fail_ran;
    }
  }
commit:
  if (!sq_exec(c, "COMMIT", NULL, NULL, NULL, NULL, &why)) goto cleanup_writer;
  sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
fail_ran:
  for (size_t i = 0; i < ran; i++)
    if (!batch[i]->rc) sq_wreq_fail(batch[i], &why);
cleanup_writer:
  sq_write_end(s, c, n);
fail_unrun:
  for (size_t i = ran; i < n; i++)
    sq_wreq_fail(batch[i], &why);
}

/* Called with q_mu held by the caller at the head of the queue: runs the
 * first SQ_GROUP_MAX queued writes (its own first) as one group, marks them
 * done and makes the next queued caller the head, which leads the next group
 * (the writes that queued while this group committed). Returns with q_mu held. */
static void sq_group_lead(sq_store *s) {
  sq_wreq *batch[SQ_GROUP_MAX];
  size_t n = 0;
  for (sq_wreq *w = s->q_head; w && n < SQ_GROUP_MAX; w = w->next)
    batch[n++] = w;
  pthread_mutex_unlock(&s->q_mu);
  sq_group_run(s, batch, n);
  pthread_mutex_lock(&s->q_mu);
  /* Newcomers only ever append, so the group is still the queue's front. */
  s->q_head = batch[n - 1]->next;
  if (!s->q_head) s->q_tail = NULL;
  for (size_t i = 0; i < n; i++) {
    batch[i]->done = 1;
    if (i) pthread_cond_signal(&batch[i]->cv); /* batch[0] is the caller */
  }
  if (s->q_head) pthread_cond_signal(&s->q_head->cv);
}

/* Queues one write and returns once its group committed (or failed): a
 * block (see store_set_block_hook), waiting on the group's commit and fsync. */
static int sq_write(sq_store *s, sq_wreq *w, store_err *err) {
  store_block();
  w->err = err;
  w->rc = STORE_OK;
  w->done = 0;
  w->next = NULL;
  pthread_cond_init(&w->cv, NULL);
  pthread_mutex_lock(&s->q_mu);
  if (s->q_tail)
    s->q_tail->next = w;
  else
    s->q_head = w;
  s->q_tail = w;
  while (!w->done && s->q_head != w)
    pthread_cond_wait(&w->cv, &s->q_mu);
  if (!w->done) sq_group_lead(s);
  pthread_mutex_unlock(&s->q_mu);
  pthread_cond_destroy(&w->cv);
  return w->rc;
}

/* One statement: a read on a pooled connection, a write through the queue. */
static int sq_run(sq_store *s, int write, const char *sql, json_t *args, sq_row_fn fn, void *ctx,
                  long long *changes, store_err *err) {
  if (write) {
    sq_wreq w = {.sql = sql, .args = args, .fn = fn, .ctx = ctx, .changes = changes};
    return sq_write(s, &w, err);
  }
  sq_conn *c;
  int rc = sq_acquire(s, &c, err);
  if (rc) return rc;
  rc = sq_exec(c, sql, args, fn, ctx, changes, err);
  sq_release(s, c);
  return rc;
}

static int row_doc(sqlite3_stmt *stmt, void *ctx, store_err *err) {
  const char *text = (const char *)sqlite3_column_text(stmt, 0);
  json_t *doc = text ? store_json_load(text, (size_t)sqlite3_column_bytes(stmt, 0)) : NULL;
  if (!doc) return store_fail(err, STORE_EINTERNAL, "sqlite: unreadable stored document");
  if (json_array_append_new((json_t *)ctx, doc))
    return store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  return STORE_OK;
}

static int row_int(sqlite3_stmt *stmt, void *ctx, store_err *err) {
  (void)err;
  *(long long *)ctx = sqlite3_column_int64(stmt, 0);
  return STORE_OK;
}

/* ---- change log ------------------------------------------------------------ */

/* Takes the next `count` sequence numbers of tenant's log; the first is
 * *first. In the caller's savepoint: undone with its write. */
static int sq_log_seqs(sq_conn *c, const char *tenant, long long count, long long *first,
                       store_err *err) {
  long long last = 0;
  sq_arg args[] = {{.kind = SQ_TEXT, .text = tenant}, {.kind = SQ_INT, .num = count}};
  int rc = sq_execv(c,
                    "INSERT INTO \"" STORE_COUNTERS "\"(tenant,id,value) VALUES(?1,'" STORE_CHANGES
                    "',?2) ON CONFLICT(tenant,id) DO UPDATE SET value=value+?2 RETURNING value",
                    args, 2, row_int, &last, err);
  *first = last - count + 1;
  return rc;
}

/* Writes one change with its sequence number. */
static int sq_log_at(sq_conn *c, const char *tenant, long long seq, long long now, int op,
                     const char *coll, json_t *id, const char *doc, store_err *err) {
  sq_arg args[] = {{.kind = SQ_TEXT, .text = tenant}, {.kind = SQ_INT, .num = seq},
                   {.kind = SQ_INT, .num = now},      {.kind = SQ_INT, .num = op},
                   {.kind = SQ_TEXT, .text = coll},   {.kind = SQ_JSON, .json = id},
                   {.kind = SQ_TEXT, .text = doc}};
  return sq_execv(c,
                  "INSERT INTO \"" STORE_CHANGES "\"(tenant,seq,time,op,coll,id,doc)"
                  " VALUES(?,?,?,?,?,?,?)",
                  args, 7, NULL, NULL, err);
}

/* Appends one change to tenant's log on c, inside the caller's savepoint. */
static int sq_log(sq_conn *c, const char *tenant, int op, const char *coll, json_t *id,
                  const char *doc, store_err *err) {
  long long seq = 0;
  int rc = sq_log_seqs(c, tenant, 1, &seq, err);
  return rc ? rc : sq_log_at(c, tenant, seq, store_now_us(), op, coll, id, doc, err);
}

/* The run of a one-statement write that logs a change when it changed a row. */
static int sq_logged_run(sq_conn *c, sq_wreq *w, store_err *err) {
  long long changed = 0;
  int rc = sq_exec(c, w->sql, w->args, w->fn, w->ctx, &changed, err);
  if (w->changes) *w->changes = changed;
  if (!rc && changed > 0) rc = sq_log(c, w->tenant, w->op, w->coll, w->log_id, w->log_doc, err);
  return rc;
}

/* Rows of DELETE ... RETURNING id, doc: [[id, doc], ...]. */
static int row_deleted(sqlite3_stmt *stmt, void *ctx, store_err *err) {
  json_t *id = sqlite3_column_type(stmt, 0) == SQLITE_INTEGER
                   ? json_integer(sqlite3_column_int64(stmt, 0))
                   : json_string((const char *)sqlite3_column_text(stmt, 0));
  json_t *row = json_pack("[os]", id, (const char *)sqlite3_column_text(stmt, 1));
  if (!row || json_array_append_new((json_t *)ctx, row))
    return store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  return STORE_OK;
}

/* A delete (of one document or of every match): the statement returns what
 * it removed, and each document removed is logged with its last state. */
static int sq_delete_run(sq_conn *c, sq_wreq *w, store_err *err) {
  json_t *rows = json_array();
  if (!rows) return store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  int rc = sq_exec(c, w->sql, w->args, row_deleted, rows, NULL, err);
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    if (rc) break;
    rc = sq_log(c, w->tenant, STORE_CHANGE_DELETE, w->coll, json_array_get(row, 0),
                json_string_value(json_array_get(row, 1)), err);
  }
  if (w->changes) *w->changes = rc ? 0 : (long long)json_array_size(rows);
  json_decref(rows);
  return rc;
}

/* ---- SQL building ---------------------------------------------------------- */

typedef struct sq_sql {
  store_buf text;
  json_t *args;
} sq_sql;

static void sql_arg(sq_sql *q, json_t *v) {
  if (!q->args || json_array_append(q->args, v)) q->text.oom = 1;
}

static void sql_arg_str(sq_sql *q, const char *s) {
  json_t *v = json_string(s);
  sql_arg(q, v);
  json_decref(v);
}

/* Must produce byte-identical text for index definitions and queries. */
static void sql_field(store_buf *b, const char *field) {
  if (!strcmp(field, "id")) {
    store_buf_add(b, "id");
    return;
  }
  store_buf_add(b, "json_extract(doc,'$");
  for (const char *p = field; *p;) {
    size_t n = strcspn(p, ".");
    store_buf_add(b, ".\"");
    store_buf_addn(b, p, n);
    store_buf_add(b, "\"");
    p += n + (p[n] == '.');
  }
  store_buf_add(b, "')");
}

/* An array field's members, for the array operators: an open subquery. */
static void sql_members(store_buf *b, const char *field) {
  store_buf_add(b, "(SELECT value FROM json_each(doc,'$");
  for (const char *p = field; *p;) {
    size_t n = strcspn(p, ".");
    store_buf_add(b, ".\"");
    store_buf_addn(b, p, n);
    store_buf_add(b, "\"");
    p += n + (p[n] == '.');
  }
  store_buf_add(b, "')");
}

static void sql_list(sq_sql *q, json_t *values) {
  size_t i;
  json_t *v;
  store_buf_add(&q->text, "(");
  json_array_foreach(values, i, v) {
    store_buf_add(&q->text, i ? ",?" : "?");
    sql_arg(q, v);
  }
  store_buf_add(&q->text, ")");
}

/* The predicate of one condition. */
static void sql_pred(sq_sql *q, const store_cond *c) {
  static const char *cmp[] = {
      [STORE_GT] = " > ?", [STORE_GTE] = " >= ?", [STORE_LT] = " < ?", [STORE_LTE] = " <= ?"};
  store_buf *b = &q->text;
  switch (c->op) {
  case STORE_HAS:
  case STORE_HAS_ANY:
    /* json_each's value of a member is its SQL form, as json_extract's. */
    store_buf_add(b, "EXISTS ");
    sql_members(b, c->field);
    if (c->op == STORE_HAS) {
      store_buf_add(b, " WHERE value = ?");
      sql_arg(q, c->value);
    } else {
      store_buf_add(b, " WHERE value IN ");
      sql_list(q, c->value);
    }
    store_buf_add(b, ")");
    return;
  case STORE_NONEMPTY:
    store_buf_add(b, "EXISTS ");
    sql_members(b, c->field);
    store_buf_add(b, ")");
    return;
  case STORE_CONTAINS:
    store_buf_add(b, "instr(lower(");
    sql_field(b, c->field);
    store_buf_add(b, "), lower(?)) > 0");
    sql_arg(q, c->value);
    return;
  default:
    break;
  }
  sql_field(b, c->field);
  switch (c->op) {
  case STORE_EQ:
    store_buf_add(b, " = ?");
    sql_arg(q, c->value);
    break;
  case STORE_IN:
    store_buf_add(b, " IN ");
    sql_list(q, c->value);
    break;
  case STORE_GT:
  case STORE_GTE:
  case STORE_LT:
  case STORE_LTE:
    store_buf_add(b, cmp[c->op]);
    sql_arg(q, c->value);
    break;
  case STORE_EXISTS:
    store_buf_add(b, " IS NOT NULL");
    break;
  case STORE_MISSING:
    store_buf_add(b, " IS NULL");
    break;
  default:
    break;
  }
}

static void sql_cond(sq_sql *q, const store_cond *c) {
  store_buf_add(&q->text, " AND ");
  sql_pred(q, c);
}

/* An expression in two-valued logic: a condition on a missing field is
 * false (SQL's NULL would make NOT of it NULL too, dropping the row). */
static void sql_expr(sq_sql *q, const store_expr *e) {
  store_buf *b = &q->text;
  switch (e->kind) {
  case STORE_X_COND:
    store_buf_add(b, "coalesce((");
    sql_pred(q, &e->cond);
    store_buf_add(b, "),0)");
    return;
  case STORE_X_NOT:
    store_buf_add(b, "NOT (");
    sql_expr(q, &e->operands[0]);
    store_buf_add(b, ")");
    return;
  case STORE_X_AND:
  case STORE_X_OR:
    store_buf_add(b, "(");
    for (size_t i = 0; i < e->n_operands; i++) {
      if (i) store_buf_add(b, e->kind == STORE_X_AND ? " AND " : " OR ");
      sql_expr(q, &e->operands[i]);
    }
    store_buf_add(b, ")");
    return;
  }
}

static void sql_where(sq_sql *q, const char *tenant, const store_cond *conds, size_t n,
                      const store_expr *where) {
  store_buf_add(&q->text, " WHERE tenant = ?");
  sql_arg_str(q, tenant);
  for (size_t i = 0; i < n; i++)
    sql_cond(q, &conds[i]);
  if (where) {
    store_buf_add(&q->text, " AND ");
    sql_expr(q, where);
  }
}

/* Rows strictly after the seek position. With one direction throughout a row
 * value comparison lets SQLite seek in the index; mixed directions need the
 * expanded form (k1 > v1) OR (k1 = v1 AND k2 < v2) OR ... Sort keys are
 * assumed non-null; a null in the seek position only gets a sane meaning
 * (nulls sort first). */
static void sql_seek(sq_sql *q, const store_plan *p) {
  store_buf *b = &q->text;
  int uniform = 1;
  json_t *v0 = json_array_get(p->seek, 0);
  if (!json_is_null(v0)) {
    /* Implied by what follows, but only a plain range on the leading key lets
     * the planner start the index scan at the seek position. */
    store_buf_add(b, " AND ");
    sql_field(b, p->order[0].field);
    store_buf_add(b, p->order[0].desc ? " <= ?" : " >= ?");
    sql_arg(q, v0);
  }
  for (size_t i = 0; i < p->n_order; i++)
    if (p->order[i].desc != p->order[0].desc || json_is_null(json_array_get(p->seek, i)))
      uniform = 0;
  if (uniform) {
    store_buf_add(b, " AND (");
    for (size_t i = 0; i < p->n_order; i++) {
      if (i) store_buf_add(b, ",");
      sql_field(b, p->order[i].field);
    }
    store_buf_add(b, p->order[0].desc ? ") < (" : ") > (");
    for (size_t i = 0; i < p->n_order; i++) {
      store_buf_add(b, i ? ",?" : "?");
      sql_arg(q, json_array_get(p->seek, i));
    }
    store_buf_add(b, ")");
    return;
  }
  store_buf_add(b, " AND (");
  for (size_t i = 0; i < p->n_order; i++) {
    store_buf_add(b, i ? " OR (" : "(");
    for (size_t j = 0; j <= i; j++) {
      json_t *v = json_array_get(p->seek, j);
      if (j) store_buf_add(b, " AND ");
      sql_field(b, p->order[j].field);
      if (j < i) {
        store_buf_add(b, json_is_null(v) ? " IS NULL" : " = ?");
      } else if (json_is_null(v)) {
        /* Descending, nothing comes after null; ascending, every value does. */
        store_buf_add(b, p->order[j].desc ? " IS NULL AND 0" : " IS NOT NULL");
      } else {
        store_buf_add(b, p->order[j].desc ? " < ?" : " > ?");
      }
      if (!json_is_null(v)) sql_arg(q, v);
    }
    store_buf_add(b, ")");
  }
  store_buf_add(b, ")");
}

static int sql_ready(sq_sql *q, store_err *err) {
  return q->text.oom || !q->args ? store_fail(err, STORE_EINTERNAL, "sqlite: out of memory")
                                 : STORE_OK;
}

static void sql_free(sq_sql *q) {
  store_buf_free(&q->text);
  json_decref(q->args);
}

/* ---- operations ------------------------------------------------------------ */

#define SQ(st) ((sq_store *)(st))

static int sq_ping(store *st, store_err *err) {
  long long one = 0;
  return sq_run(SQ(st), 0, "SELECT 1", NULL, row_int, &one, NULL, err);
}

static int sq_next_ids(store *st, const char *tenant, const char *sequence, long long count,
                       long long *first, store_err *err) {
  json_t *args = json_pack("[ssI]", tenant, sequence, (json_int_t)count);
  if (!args) return store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  long long last = 0;
  int rc = sq_run(SQ(st), 1,
                  "INSERT INTO \"" STORE_COUNTERS "\"(tenant,id,value) VALUES(?,?,?) "
                  "ON CONFLICT(tenant,id) DO UPDATE SET value=value+excluded.value RETURNING value",
                  args, row_int, &last, NULL, err);
  json_decref(args);
  *first = rc ? 0 : last - count + 1;
  return rc;
}

/* A block of one; a single upsert either way, atomic without a read. */
static int sq_next_id(store *st, const char *tenant, const char *sequence, long long *out,
                      store_err *err) {
  return sq_next_ids(st, tenant, sequence, 1, out, err);
}

/* Every inserted document, single or one of a batch, is written here, in the
 * open group transaction on the writer connection; sql is the collection's
 * INSERT, text the document as stored. */
static int sq_insert_doc(sq_conn *c, const char *sql, const char *tenant, json_t *id,
                         const char *text, store_err *err) {
  sq_arg args[] = {{.kind = SQ_TEXT, .text = tenant},
                   {.kind = SQ_JSON, .json = id},
                   {.kind = SQ_TEXT, .text = text}};
  return sq_execv(c, sql, args, 3, NULL, NULL, err);
}

/* A batch of inserts, as one write of the group (texts serialised by the
 * caller, outside the write lock). */
typedef struct sq_insert_args {
  const char *tenant, *coll;
  json_t *const *ids, *const *docs;
  char **texts;
  size_t n;
  int atomic;
  int single; /* store_insert: the document's error is the write's */
  int *results;
  int item_failed; /* out: an atomic batch refused because of its items */
} sq_insert_args;

/* The documents first, then their changes as one block of the log. A
 * refused INSERT undoes itself (SQLite statements are atomic), so no
 * document needs a savepoint of its own: the sub-journal that a savepoint
 * keeps - a copy of every page it touches - cost more than the inserts.
 * Whatever fails after that ends the write, and the group's savepoint (or
 * rollback) takes the documents back. Atomic: the others are still tried so
 * that every refused document is reported. */
static int sq_insert_locked(sq_conn *c, sq_wreq *w, store_err *err) {
  sq_insert_args *a = w->ctx;
  store_err item;
  size_t failed = 0;
  char sql[128];
  int rc;
  snprintf(sql, sizeof sql, "INSERT INTO \"%s\"(tenant,id,doc) VALUES(?,?,?)", a->coll);
  if (a->single) { /* the group's savepoint is the document's */
    rc = sq_insert_doc(c, sql, a->tenant, a->ids[0], a->texts[0], err);
    return rc ? rc
              : sq_log(c, a->tenant, STORE_CHANGE_CREATE, a->coll, a->ids[0], a->texts[0], err);
  }
  memset(a->results, 0, a->n * sizeof *a->results);
  for (size_t i = 0; i < a->n; i++) {
    rc = sq_insert_doc(c, sql, a->tenant, a->ids[i], a->texts[i], &item);
    if (rc && sqlite3_get_autocommit(c->db)) { /* the whole transaction is gone */
      if (err) *err = item;
      return rc;
    }
    if (rc) {
      a->results[i] = rc;
      failed++;
    }
  }
  if (a->atomic && failed) {
    for (size_t i = 0; i < a->n; i++)
      if (!a->results[i]) a->results[i] = STORE_EABORTED;
    a->item_failed = 1;
    return store_fail(err, STORE_EABORTED, "sqlite: %zu documents of an atomic batch refused",
                      failed);
  }
  if (failed == a->n) return STORE_OK;
  long long seq = 0, now = store_now_us();
  if ((rc = sq_log_seqs(c, a->tenant, (long long)(a->n - failed), &seq, err))) return rc;
  for (size_t i = 0; i < a->n; i++)
    if (!a->results[i] && (rc = sq_log_at(c, a->tenant, seq++, now, STORE_CHANGE_CREATE, a->coll,
                                          a->ids[i], a->texts[i], err)))
      return rc;
  return STORE_OK;
}

/* Whether a group is only single-document inserts (store_insert) of one
 * tenant: those sq_group_inserts may run together. */
static int sq_group_plain(sq_wreq **batch, size_t n) {
  const char *tenant = NULL;
  for (size_t i = 0; i < n; i++) {
    const sq_insert_args *a = batch[i]->ctx;
    if (batch[i]->run != sq_insert_locked || !a->single) return 0;
    if (tenant && strcmp(tenant, a->tenant)) return 0;
    tenant = a->tenant;
  }
  return 1;
}

/* A group of single-document inserts of one tenant in the open group
 * transaction, without a savepoint per write: a refused INSERT undoes itself
 * (a duplicate fails alone and gets its own error), so each document is
 * written or refused on its own; then the changes of those written, as one
 * block of the log (one sequence claim for the group, in the group's order:
 * the group commits at once, so seq order is still commit order). A
 * savepoint per write cost two statements and a sub-journal copy of every
 * page the write touched, and a claim per write one more statement.
 * Returns STORE_OK, or the error that stopped it in *why: if the transaction
 * is still open then (a log statement failed), the caller undoes the group
 * and runs it again with savepoints. */
static int sq_group_inserts(sq_conn *c, sq_wreq **batch, size_t n, store_err *why) {
  const sq_insert_args *a0 = batch[0]->ctx;
  const char *coll = NULL;
  char sql[128];
  long long written = 0;
  for (size_t i = 0; i < n; i++) {
    sq_wreq *w = batch[i];
    const sq_insert_args *a = w->ctx;
    if (!coll || strcmp(coll, a->coll)) {
      snprintf(sql, sizeof sql, "INSERT INTO \"%s\"(tenant,id,doc) VALUES(?,?,?)", a->coll);
      coll = a->coll;
    }
    w->rc = sq_insert_doc(c, sql, a->tenant, a->ids[0], a->texts[0], w->err);
    if (w->rc && sqlite3_get_autocommit(c->db)) { /* the whole transaction is gone */
      *why = w->err ? *w->err : (store_err){w->rc, "sqlite: write failed"};
      return w->rc;
    }
    written += !w->rc;
  }
  if (!written) return STORE_OK;
  long long seq = 0, now = store_now_us();
  int rc = sq_log_seqs(c, a0->tenant, written, &seq, why);
  for (size_t i = 0; !rc && i < n; i++) {
    const sq_insert_args *a = batch[i]->ctx;
    if (!batch[i]->rc)
      rc = sq_log_at(c, a->tenant, seq++, now, STORE_CHANGE_CREATE, a->coll, a->ids[0], a->texts[0],
                     why);
  }
  return rc;
}

static int sq_insert_write(sq_store *s, sq_insert_args a, store_err *err) {
  size_t n = a.n;
  json_t *const *docs = a.docs;
  a.texts = calloc(n, sizeof(char *));
  int rc = a.texts ? STORE_OK : store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  for (size_t i = 0; !rc && i < n; i++)
    if (!(a.texts[i] = store_json_dumps(docs[i])))
      rc = store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  if (!rc) {
    sq_wreq w = {.run = sq_insert_locked, .ctx = &a};
    rc = sq_write(s, &w, err);
    if (rc && a.item_failed) rc = STORE_OK; /* results say which and why */
    if (!rc && err) {
      err->code = STORE_OK;
      err->msg[0] = '\0';
    }
  }
  for (size_t i = 0; a.texts && i < n; i++)
    free(a.texts[i]);
  free(a.texts);
  return rc;
}

static int sq_insert_many(store *st, const char *tenant, const char *coll, json_t *const *ids,
                          json_t *const *docs, size_t n, int atomic, int *results, store_err *err) {
  sq_insert_args a = {.tenant = tenant,
                      .coll = coll,
                      .ids = ids,
                      .docs = docs,
                      .n = n,
                      .atomic = atomic,
                      .results = results};
  return sq_insert_write(SQ(st), a, err);
}

static int sq_insert(store *st, const char *tenant, const char *coll, json_t *id, json_t *doc,
                     store_err *err) {
  int result = STORE_OK;
  sq_insert_args a = {.tenant = tenant,
                      .coll = coll,
                      .ids = &id,
                      .docs = &doc,
                      .n = 1,
                      .single = 1,
                      .results = &result};
  return sq_insert_write(SQ(st), a, err);
}

static int sq_get(store *st, const char *tenant, const char *coll, json_t *id, json_t **out,
                  store_err *err) {
  char sql[128];
  json_t *args = json_pack("[sO]", tenant, id), *docs = json_array();
  int rc = store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  if (args && docs) {
    snprintf(sql, sizeof sql, "SELECT doc FROM \"%s\" WHERE tenant = ? AND id = ?", coll);
    rc = sq_run(SQ(st), 0, sql, args, row_doc, docs, NULL, err);
  }
  if (!rc && json_array_size(docs) == 0)
    rc = store_fail(err, STORE_ENOTFOUND, "%s: no such id", coll);
  if (!rc) *out = json_incref(json_array_get(docs, 0));
  json_decref(docs);
  json_decref(args);
  return rc;
}

static int sq_replace(store *st, const char *tenant, const char *coll, json_t *id, json_t *doc,
                      store_err *err) {
  char sql[128];
  long long changed = 0;
  char *text = store_json_dumps(doc);
  json_t *args = text ? json_pack("[ssO]", text, tenant, id) : NULL;
  int rc = store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  if (args) {
    snprintf(sql, sizeof sql, "UPDATE \"%s\" SET doc = ? WHERE tenant = ? AND id = ?", coll);
    sq_wreq w = {.run = sq_logged_run,
                 .sql = sql,
                 .args = args,
                 .changes = &changed,
                 .tenant = tenant,
                 .coll = coll,
                 .op = STORE_CHANGE_UPDATE,
                 .log_id = id,
                 .log_doc = text};
    rc = sq_write(SQ(st), &w, err);
  }
  if (!rc && changed == 0) rc = store_fail(err, STORE_ENOTFOUND, "%s: no such id", coll);
  json_decref(args);
  free(text);
  return rc;
}

/* Read-modify-write inside the group's transaction (BEGIN IMMEDIATE): the
 * write lock is taken before the read, so no other writer (in any process)
 * can slip in between. */
typedef struct sq_patch_args {
  const char *tenant, *coll;
  json_t *id, *set;
  json_t *doc; /* out: the updated document, a new reference */
} sq_patch_args;

static int sq_patch_locked(sq_conn *c, sq_wreq *w, store_err *err) {
  sq_patch_args *a = w->ctx;
  char sql[128];
  long long changed = 0;
  char *text = NULL;
  json_t *docs = json_array(), *args = json_pack("[sO]", a->tenant, a->id), *args2 = NULL;
  int rc = store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  if (!docs || !args) goto cleanup;
  snprintf(sql, sizeof sql, "SELECT doc FROM \"%s\" WHERE tenant = ? AND id = ?", a->coll);
  if ((rc = sq_exec(c, sql, args, row_doc, docs, NULL, err))) goto cleanup;
  json_t *doc = json_array_get(docs, 0);
  if (!doc) {
    rc = store_fail(err, STORE_ENOTFOUND, "%s: no such id", a->coll);
    goto cleanup;
  }
  if ((rc = store_doc_patch(doc, a->set, err))) goto cleanup;
  rc = store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  if (!(text = store_json_dumps(doc)) || !(args2 = json_pack("[ssO]", text, a->tenant, a->id)))
    goto cleanup;
  snprintf(sql, sizeof sql, "UPDATE \"%s\" SET doc = ? WHERE tenant = ? AND id = ?", a->coll);
  if ((rc = sq_exec(c, sql, args2, NULL, NULL, &changed, err))) goto cleanup;
  if ((rc = sq_log(c, a->tenant, STORE_CHANGE_UPDATE, a->coll, a->id, text, err))) goto cleanup;
  a->doc = json_incref(doc);
cleanup:
  free(text);
  json_decref(args2);
  json_decref(args);
  json_decref(docs);
  return rc;
}

static int sq_patch(store *st, const char *tenant, const char *coll, json_t *id, json_t *set,
                    json_t **out, store_err *err) {
  sq_patch_args a = {tenant, coll, id, set, NULL};
  sq_wreq w = {.run = sq_patch_locked, .ctx = &a};
  int rc = sq_write(SQ(st), &w, err);
  if (rc) {
    /* Patched in a savepoint that was undone, or in a group that failed. */
    json_decref(a.doc);
    a.doc = NULL;
  }
  if (out)
    *out = a.doc;
  else
    json_decref(a.doc);
  return rc;
}

static int sq_delete(store *st, const char *tenant, const char *coll, json_t *id, store_err *err) {
  char sql[128];
  long long changed = 0;
  json_t *args = json_pack("[sO]", tenant, id);
  if (!args) return store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE tenant = ? AND id = ? RETURNING id, doc",
           coll);
  sq_wreq w = {.run = sq_delete_run,
               .sql = sql,
               .args = args,
               .changes = &changed,
               .tenant = tenant,
               .coll = coll};
  int rc = sq_write(SQ(st), &w, err);
  json_decref(args);
  if (!rc && changed == 0) rc = store_fail(err, STORE_ENOTFOUND, "%s: no such id", coll);
  return rc;
}

static int sq_find(store *st, const char *tenant, const char *coll, const store_plan *p,
                   json_t *docs, store_err *err) {
  sq_sql q = {{0}, json_array()};
  store_buf_addf(&q.text, "SELECT doc FROM \"%s\"", coll);
  sql_where(&q, tenant, p->conds, p->n_conds, p->where);
  if (p->seek) sql_seek(&q, p);
  store_buf_add(&q.text, " ORDER BY ");
  for (size_t i = 0; i < p->n_order; i++) {
    if (i) store_buf_add(&q.text, ", ");
    sql_field(&q.text, p->order[i].field);
    store_buf_add(&q.text, p->order[i].desc ? " DESC" : " ASC");
  }
  store_buf_add(&q.text, " LIMIT ? OFFSET ?");
  json_t *lim = json_integer(p->limit ? (json_int_t)p->limit : -1);
  json_t *off = json_integer((json_int_t)p->offset);
  sql_arg(&q, lim);
  sql_arg(&q, off);
  json_decref(lim);
  json_decref(off);
  int rc = sql_ready(&q, err);
  if (!rc) rc = sq_run(SQ(st), 0, q.text.p, q.args, row_doc, docs, NULL, err);
  sql_free(&q);
  return rc;
}

static int sq_count(store *st, const char *tenant, const char *coll, const store_cond *conds,
                    size_t n_conds, const store_expr *where, long long *out, store_err *err) {
  sq_sql q = {{0}, json_array()};
  store_buf_addf(&q.text, "SELECT count(*) FROM \"%s\"", coll);
  sql_where(&q, tenant, conds, n_conds, where);
  *out = 0;
  int rc = sql_ready(&q, err);
  if (!rc) rc = sq_run(SQ(st), 0, q.text.p, q.args, row_int, out, NULL, err);
  sql_free(&q);
  return rc;
}

static int sq_delete_where(store *st, const char *tenant, const char *coll, const store_cond *conds,
                           size_t n_conds, long long *deleted, store_err *err) {
  sq_sql q = {{0}, json_array()};
  store_buf_addf(&q.text, "DELETE FROM \"%s\"", coll);
  sql_where(&q, tenant, conds, n_conds, NULL);
  store_buf_add(&q.text, " RETURNING id, doc");
  int rc = sql_ready(&q, err);
  if (!rc) {
    sq_wreq w = {.run = sq_delete_run,
                 .sql = q.text.p,
                 .args = q.args,
                 .changes = deleted,
                 .tenant = tenant,
                 .coll = coll};
    rc = sq_write(SQ(st), &w, err);
  }
  sql_free(&q);
  return rc;
}

/* ---- change log reads and pruning ------------------------------------------ */

static int row_change(sqlite3_stmt *stmt, void *ctx, store_err *err) {
  json_error_t jerr;
  json_t *id = sqlite3_column_type(stmt, 4) == SQLITE_INTEGER
                   ? json_integer(sqlite3_column_int64(stmt, 4))
                   : json_string((const char *)sqlite3_column_text(stmt, 4));
  const char *text = (const char *)sqlite3_column_text(stmt, 5);
  json_t *doc = text ? json_loadb(text, (size_t)sqlite3_column_bytes(stmt, 5), 0, &jerr) : NULL;
  json_t *ch =
      json_pack("{sI sI si ss so so*}", "seq", (json_int_t)sqlite3_column_int64(stmt, 0), "time",
                (json_int_t)sqlite3_column_int64(stmt, 1), "op", sqlite3_column_int(stmt, 2),
                "coll", (const char *)sqlite3_column_text(stmt, 3), "id", id, "doc", doc);
  if (!ch || json_array_append_new((json_t *)ctx, ch))
    return store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  return STORE_OK;
}

static int sq_changes(store *st, const char *tenant, long long after, size_t limit,
                      store_changes_page *out, store_err *err) {
  sq_store *s = SQ(st);
  sq_conn *c;
  json_t *a1 = json_pack("[sIi]", tenant, (json_int_t)after, (int)limit);
  json_t *a2 = json_pack("[s]", tenant);
  int rc =
      a1 && a2 ? sq_acquire(s, &c, err) : store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  if (rc) goto cleanup;
  /* One read transaction: the head, floor and page agree with each other. */
  rc = sq_exec(c, "BEGIN", NULL, NULL, NULL, NULL, err);
  if (!rc)
    rc = sq_exec(
        c, "SELECT value FROM \"" STORE_COUNTERS "\" WHERE tenant = ? AND id = '" STORE_CHANGES "'",
        a2, row_int, &out->head, NULL, err);
  if (!rc)
    rc = sq_exec(c,
                 "SELECT value FROM \"" STORE_COUNTERS
                 "\" WHERE tenant = ? AND id = '" STORE_CHANGES "#pruned'",
                 a2, row_int, &out->floor, NULL, err);
  if (!rc)
    rc = sq_exec(c,
                 "SELECT seq, time, op, coll, id, doc FROM \"" STORE_CHANGES
                 "\" WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?",
                 a1, row_change, out->changes, NULL, err);
  store_err ignored;
  sq_exec(c, "COMMIT", NULL, NULL, NULL, NULL, &ignored);
  sq_release(s, c);
  size_t n = json_array_size(out->changes);
  if (!rc && n)
    out->scanned = json_integer_value(json_object_get(json_array_get(out->changes, n - 1), "seq"));
cleanup:
  json_decref(a1);
  json_decref(a2);
  return rc;
}

typedef struct sq_prune_args {
  long long before_us, removed;
} sq_prune_args;

static int sq_prune_run(sq_conn *c, sq_wreq *w, store_err *err) {
  sq_prune_args *a = w->ctx;
  json_t *args = json_pack("[I]", (json_int_t)a->before_us);
  if (!args) return store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  /* The watermark first, so a reader never sees the entries gone without it. */
  int rc =
      sq_exec(c,
              "INSERT INTO \"" STORE_COUNTERS "\"(tenant,id,value) SELECT tenant, '" STORE_CHANGES
              "#pruned', max(seq) FROM \"" STORE_CHANGES "\" WHERE time < ?1 GROUP BY tenant"
              " ON CONFLICT(tenant,id) DO UPDATE SET value=max(value, excluded.value)",
              args, NULL, NULL, NULL, err);
  if (!rc)
    rc = sq_exec(c, "DELETE FROM \"" STORE_CHANGES "\" WHERE time < ?1", args, NULL, NULL,
                 &a->removed, err);
  json_decref(args);
  return rc;
}

static int sq_changes_prune(store *st, long long before_us, long long *removed, store_err *err) {
  sq_prune_args a = {before_us, 0};
  sq_wreq w = {.run = sq_prune_run, .ctx = &a};
  int rc = sq_write(SQ(st), &w, err);
  *removed = a.removed;
  return rc;
}

/* ---- open / close ---------------------------------------------------------- */

static int make_parent_dirs(const char *path, store_err *err) {
  char *copy = strdup(path);
  if (!copy) return store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  int rc = STORE_OK;
  for (char *p = strchr(copy + 1, '/'); p; p = strchr(p + 1, '/')) {
    *p = '\0';
    if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
      rc = store_fail(err, STORE_EUNAVAILABLE, "sqlite: mkdir %s: %s", copy, strerror(errno));
      break;
    }
    *p = '/';
  }
  free(copy);
  return rc;
}

static void ddl_table(store_buf *b, const char *coll) {
  /* id has no declared type: integers stay integers and sort numerically. */
  store_buf_add(b, "CREATE TABLE IF NOT EXISTS \"");
  store_buf_add(b, coll);
  store_buf_add(b, "\"(tenant TEXT NOT NULL, id NOT NULL, doc TEXT NOT NULL,"
                   " PRIMARY KEY(tenant, id)) WITHOUT ROWID;\n");
}

static void ddl_index(store_buf *b, const char *coll, const store_index *ix) {
  /* The name spells out the definition, so IF NOT EXISTS never keeps a stale
   * index under a name that now means something else. */
  store_buf_add(b, ix->unique ? "CREATE UNIQUE INDEX IF NOT EXISTS \"ux:"
                              : "CREATE INDEX IF NOT EXISTS \"ix:");
  store_buf_add(b, coll);
  store_buf_add(b, "(");
  for (size_t k = 0; k < STORE_MAX_INDEX_FIELDS && ix->fields[k]; k++) {
    if (k) store_buf_add(b, ",");
    store_buf_add(b, ix->fields[k]);
  }
  store_buf_add(b, ")\" ON \"");
  store_buf_add(b, coll);
  store_buf_add(b, "\"(tenant");
  for (size_t k = 0; k < STORE_MAX_INDEX_FIELDS && ix->fields[k]; k++) {
    store_buf_add(b, ", ");
    sql_field(b, ix->fields[k]);
  }
  store_buf_add(b, ");\n");
}

static int sq_schema(sq_conn *c, const store_schema *schema, store_err *err) {
  store_buf b = {0};
  store_buf_add(&b, "BEGIN IMMEDIATE;\n"
                    "CREATE TABLE IF NOT EXISTS \"" STORE_COUNTERS "\"(tenant TEXT NOT NULL,"
                    " id TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY(tenant, id))"
                    " WITHOUT ROWID;\n"
                    "CREATE TABLE IF NOT EXISTS \"" STORE_CHANGES "\"(tenant TEXT NOT NULL,"
                    " seq INTEGER NOT NULL, time INTEGER NOT NULL, op INTEGER NOT NULL,"
                    " coll TEXT NOT NULL, id NOT NULL, doc TEXT, PRIMARY KEY(tenant, seq))"
                    " WITHOUT ROWID;\n"
                    "CREATE INDEX IF NOT EXISTS \"ix:" STORE_CHANGES "(time)\" ON \"" STORE_CHANGES
                    "\"(time);\n");
  for (size_t i = 0; i < schema->n_collections; i++) {
    const store_collection *coll = &schema->collections[i];
    ddl_table(&b, coll->name);
    for (size_t j = 0; j < coll->n_indexes; j++)
      ddl_index(&b, coll->name, &coll->indexes[j]);
  }
  /* Bounded by analysis_limit: milliseconds even at 1M rows. */
  store_buf_add(&b, "COMMIT;\nANALYZE;\n");
  if (b.oom) {
    store_buf_free(&b);
    return store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  }
  int rc = sqlite3_exec(c->db, b.p, NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    rc = sq_fail(err, c->db, rc, "create schema");
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
  }
  store_buf_free(&b);
  return rc;
}

static void sq_close(store *st) {
  sq_store *s = SQ(st);
  if (s->ckpt_started) {
    pthread_mutex_lock(&s->ckpt_mu);
    s->ckpt_stop = 1;
    pthread_cond_signal(&s->ckpt_cv);
    pthread_mutex_unlock(&s->ckpt_mu);
    pthread_join(s->ckpt_thread, NULL);
  }
  if (s->writer) sq_conn_close(s->writer);
  while (s->idle) {
    sq_conn *c = s->idle;
    s->idle = c->next;
    sq_conn_close(c);
  }
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->write_mu);
  pthread_mutex_destroy(&s->q_mu);
  pthread_cond_destroy(&s->ckpt_cv);
  pthread_mutex_destroy(&s->ckpt_mu);
  free(s->path);
  free(s);
}

/* By default each connection's page cache starts with a bulk allocation of
 * 20 pages (about 87 KiB) that it keeps until it closes. Reads come from the
 * mapped file (mmap_size), so the cache holds little but written pages and
 * WAL frames, and the bulk sat unused in every connection that had read
 * anything: without it pages are allocated one by one as needed. Takes
 * effect only before SQLite initialises (SQLITE_MISUSE after: the default
 * stays). */
static void sq_config(void) {
  sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
}

static int sq_open(const char *url, const store_schema *schema, store **out, store_err *err) {
  static pthread_once_t config_once = PTHREAD_ONCE_INIT;
  pthread_once(&config_once, sq_config);
  const char *path = url + strlen("sqlite:");
  if (!*path) return store_fail(err, STORE_EINVAL, "sqlite: empty path");
  sq_store *s = calloc(1, sizeof *s);
  if (!s) return store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  pthread_mutex_init(&s->write_mu, NULL);
  pthread_mutex_init(&s->q_mu, NULL);
  pthread_mutex_init(&s->ckpt_mu, NULL);
  pthread_condattr_t ckpt_attr; /* the checkpointer's idle wait runs on CLOCK_MONOTONIC */
  pthread_condattr_init(&ckpt_attr);
  pthread_condattr_setclock(&ckpt_attr, CLOCK_MONOTONIC);
  pthread_cond_init(&s->ckpt_cv, &ckpt_attr);
  pthread_condattr_destroy(&ckpt_attr);
  s->ckpt_after = SQ_CHECKPOINT_PAGES;
  /* Every connection to ":memory:" would be a database of its own. */
  s->max_conns = strcmp(path, ":memory:") ? SQ_POOL_MAX : 1;
  int rc = (s->path = strdup(path)) ? STORE_OK
                                    : store_fail(err, STORE_EINTERNAL, "sqlite: out of memory");
  if (!rc && s->max_conns > 1) rc = make_parent_dirs(path, err);
  sq_conn *c = NULL;
  if (!rc) rc = sq_write_begin(s, &c, err);
  if (rc) goto cleanup_store;
  rc = sq_schema(c, schema, err);
  /* ANALYZE at open read pages the service may never need again. */
  if (!rc) sqlite3_db_release_memory(c->db);
  sq_write_end(s, c, 1);
  if (rc) goto cleanup_store;
  /* ":memory:" has no log to checkpoint. */
  if (s->max_conns > 1) {
    if (pthread_create(&s->ckpt_thread, NULL, sq_checkpointer, s) != 0) {
      rc = store_fail(err, STORE_EINTERNAL, "sqlite: cannot start the checkpoint thread");
      goto cleanup_store;
    }
    s->ckpt_started = 1;
  }
  *out = &s->base;
  return STORE_OK;
cleanup_store:
  sq_close(&s->base);
  return rc;
}

const store_engine_ops store_sqlite_engine = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .ping = sq_ping,
    .next_id = sq_next_id,
    .insert = sq_insert,
    .insert_many = sq_insert_many,
    .next_ids = sq_next_ids,
    .get = sq_get,
    .replace = sq_replace,
    .patch = sq_patch,
    .del = sq_delete,
    .find = sq_find,
    .count = sq_count,
    .delete_where = sq_delete_where,
    .changes = sq_changes,
    .changes_prune = sq_changes_prune,
};
