// A thin RAII layer over SQLite shared by the stores (jobs, observations, twin history):
// one connection in WAL mode with synchronous=FULL (a committed transaction is on disk), errors
// as Unavailable naming the database.
#pragma once

#include <cstdint>
#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace doppel::twin {

class Database {
 public:
  // Opens or creates the file (and its folder); Unavailable when it cannot.
  explicit Database(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  void exec(const char* sql) const;
  int changes() const;
  int64_t last_insert_rowid() const;
  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }

  // BEGIN IMMEDIATE ... COMMIT, rolled back unless commit() was called.
  class Transaction {
   public:
    explicit Transaction(const Database& db);
    ~Transaction();
    void commit();

   private:
    const Database& db_;
    bool done_ = false;
  };

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(const Database& db, const char* sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& bind(int i, const std::string& v);
  Statement& bind(int i, int64_t v);
  Statement& bind(int i, size_t v) { return bind(i, static_cast<int64_t>(v)); }
  Statement& bind(int i, double v);
  Statement& bind_null(int i);
  bool step();   // true: a row is available
  void reset();  // ready to bind and step again (prepared once, run many times)
  std::string text(int col) const;
  int64_t integer(int col) const;
  size_t count(int col) const { return static_cast<size_t>(integer(col)); }
  double real(int col) const;
  bool null(int col) const;

 private:
  const Database& db_;
  sqlite3_stmt* s_ = nullptr;
};

}  // namespace doppel::twin
